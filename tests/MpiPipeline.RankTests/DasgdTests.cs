using System.Text.Json;
using System.Text.RegularExpressions;
using MpiPipeline.Data;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.RankTests;

/// <summary>
/// --algo dasgd under a real launcher, both MPIs: the deterministic mode against a simulation written here over the
/// bridge, termination and exact accounting (updates applied = gradients sent), the measured-delay histogram, and a
/// stopped worker ending the job through the master's polled wait. One job checks several things.
/// </summary>
public sealed class DasgdTests : RankFixture
{
    private const int TrainSamples = 512, Batch = 16, Updates = 60;
    private const long Seed = 7;
    private const double Lr = 0.3, C = 0.5, P = 0.5, Q = 0.8;

    private static readonly string[] Common =
    [
        "--algo", "dasgd", "--model", "linear", .. FashionMnistPrefix.Samples(TrainSamples, 200), "--batch", Batch.ToString(),
        "--threads", "1", "--lr", Lr.ToString("R"), "--seed", Seed.ToString(),
    ];

    /// <summary>
    /// --arrival fixed with 2 workers and a replayed delay schedule: the master's final x equals, to the bit, this
    /// test's own replay of the update sequence x_n = x_{n-1} - alpha_n g(x_{s(n)}) (the workers in turn, each
    /// answered with x_{max(0, n - floor(C n^P))}); the job ends by itself, every worker sent exactly the gradients
    /// the master applied, the histogram holds the delays the replay predicts, and the header gives each worker the whole batch.
    /// </summary>
    [TestCaseSource(nameof(Flavors))]
    public void FixedArrivalEqualsAnIndependentSimulation(MpiFlavor flavor)
    {
        var histogram = NewStem("hist") + ".json";
        var run = Train(flavor, 3, "fixed", [.. Common, "--max-steps", Updates.ToString(), "--arrival", "fixed",
            "--delay", $"poly:{C},{P}", "--step-schedule", $"poly:{Q}", "--delay-histogram", histogram]);

        var (expected, delays) = Simulate();
        Assert.That(run.Parameters, Has.Length.EqualTo(expected.Length));
        Assert.That(MaxDifference(run.Parameters, expected), Is.EqualTo(0), "bitwise equal to the simulation");

        var options = run.Json.GetProperty("options");
        Assert.That(options.GetProperty("updatesApplied").GetString(), Is.EqualTo(Updates.ToString()));
        Assert.That(options.GetProperty("gradientsSent").GetString(), Is.EqualTo($"{Updates / 2},{Updates / 2}"));

        using var json = JsonDocument.Parse(File.ReadAllText(histogram));
        var counts = json.RootElement.GetProperty("counts").EnumerateObject().ToDictionary(p => long.Parse(p.Name), p => p.Value.GetInt64());
        Assert.That(counts, Is.EquivalentTo(delays.GroupBy(d => d).ToDictionary(g => g.Key, g => (long)g.Count())));
        Assert.That(File.Exists(Path.ChangeExtension(histogram, ".svg")), Is.True);

        // Each worker computes every gradient on the whole --batch, so the header must not split it over the workers.
        Assert.That(run.Output, Does.Contain($"; batch {Batch} per gradient (each worker takes the whole batch; one update per gradient), ")
            .And.Not.Contain("global batch"), run.Output);
    }

    /// <summary>
    /// Any arrival order, 3 workers, one of them 3x slower and random injected delays: the job ends by itself, every
    /// worker contributed, and the gradients sent sum to exactly the updates applied (no gradient lost or applied twice).
    /// </summary>
    [TestCaseSource(nameof(Flavors))]
    public void AnyArrivalAppliesExactlyTheGradientsSent(MpiFlavor flavor)
    {
        const int updates = 90;
        var run = Train(flavor, 4, "any", [.. Common, "--epochs", "3", "--max-steps", updates.ToString(), "--delay", "random:3", "--slow-workers", "2:3"]);
        var options = run.Json.GetProperty("options");
        Assert.That(options.GetProperty("updatesApplied").GetString(), Is.EqualTo(updates.ToString()));
        var sent = options.GetProperty("gradientsSent").GetString()!.Split(',').Select(long.Parse).ToArray();
        Assert.That(sent, Has.Length.EqualTo(3));
        Assert.That(sent.Sum(), Is.EqualTo(updates), string.Join(",", sent));
        Assert.That(sent, Has.All.GreaterThan(0), string.Join(",", sent));
        Assert.That(run.Json.GetProperty("finalTestAccuracy").GetDouble(), Is.GreaterThan(0.3));
    }

    /// <summary>
    /// A worker stopped with SIGSTOP after its first gradient: the master keeps applying the other worker's gradients,
    /// but its polled wait is watched from the time it last heard from the stopped one, so the watchdog names that
    /// worker and ends the job non-zero within the stall timeout. (6 s: above the ranks' start-up skew on a loaded
    /// node, where a worker waiting for its first model would otherwise be reported first.)
    /// </summary>
    [TestCaseSource(nameof(Flavors))]
    public void StoppedWorkerEndsTheJobNamingIt(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 3, MpiLauncher.Mpipipe, ["train", .. Common, "--epochs", "1000"], TimeSpan.FromSeconds(100),
            [("MPIPIPE_STALL_ABORT_SECONDS", "6"), (Async.DasgdEngine.StopRankVariable, "2")]);
        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(result.Elapsed, Is.LessThan(TimeSpan.FromSeconds(80)), result.ToString());
        Assert.That(result.Output, Does.Match(
            @"rank 0: blocked in " + Regex.Escape("MPI_Testany (polling wait: the workers' gradients)") + @" for [0-9]+ s \(waiting for rank 2\), over MPIPIPE_STALL_ABORT_SECONDS=6"),
            result.ToString());
    }

    /// <summary>
    /// The divergence guard without a collective: with --arrival fixed, update 5 is worker 1's 3rd gradient; the tests'
    /// hook makes its loss NaN. The master alone sees it, drops it and worker 2's gradient then in flight, and stops
    /// both workers with the divergence: one message naming step 5 and rank 1, exit status 4, the results marked
    /// diverged, and the accounting exact (sent = applied + dropped, checked by the engine's Totals on every rank too).
    /// </summary>
    [Test]
    public void ANonFiniteGradientStopsEveryRankAsDiverged()
    {
        var stem = NewStem("diverged");
        var result = MpiLauncher.Launch(MpiFlavor.Mpich, 3, MpiLauncher.Mpipipe,
            ["train", .. Common, "--max-steps", Updates.ToString(), "--arrival", "fixed", "--output", stem + ".json"], Limit,
            [(Training.NonFiniteGuard.PoisonVariable, "1:5")]);

        Assert.That(result.ExitCode, Is.EqualTo(Training.Divergence.ExitCode), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "training diverged at step 5: the loss is NaN on rank 1"), Is.EqualTo(1), result.ToString());
        Assert.That(result.Output, Does.Not.Contain("final test accuracy"), result.ToString());
        using var json = JsonDocument.Parse(File.ReadAllText(stem + ".json"));
        var root = json.RootElement;
        Assert.That(root.GetProperty("status").GetString(), Is.EqualTo("diverged"));
        Assert.That(root.GetProperty("divergence").GetProperty("step").GetInt64(), Is.EqualTo(5));
        Assert.That(root.GetProperty("divergence").GetProperty("rank").GetInt32(), Is.EqualTo(1));
        var options = root.GetProperty("options");
        Assert.That(options.GetProperty("updatesApplied").GetString(), Is.EqualTo("4"));
        Assert.That(options.GetProperty("gradientsSent").GetString(), Is.EqualTo("3,3"));
        Assert.That(options.GetProperty("gradientsDropped").GetString(), Is.EqualTo("2"));
    }

    /// <summary>
    /// The deterministic mode's update sequence, written from the paper's update rule over the bridge: x_0 from the
    /// seed, workers 1 and 2 in turn, worker k's j-th gradient on slice k - 1 of round j of the shuffled samples, at
    /// the version it was served. Returns the final x and every update's delay d_n = (n - 1) - s(n).
    /// </summary>
    private static (float[] X, List<long> Delays) Simulate()
    {
        TorchRuntime.Threads = 1;
        var options = new TrainOptions { TrainSamples = TrainSamples, TestSamples = 200 };
        var (train, _) = TrainingLoop.LoadData(options);
        using var stage = Stage.Create(ModelZoo.Build("linear", train.Geometry), train.SampleShape, "cpu", Seed);
        stage.PullParameters();
        var versions = new List<float[]> { stage.Parameters.ToArray() };
        const int workers = 2;
        var servedVersion = new long[workers];        // both start at x_0
        var gradientsOf = new long[workers];
        var samplers = Enumerable.Range(0, workers).Select(k => new ShuffleSampler(train.Count, Seed, Batch * workers, k, workers)).ToArray();
        var images = new float[Batch * train.SampleSize];
        var labels = new int[Batch];
        var indices = new int[Batch];
        var delays = new List<long>();
        for (var n = 1; n <= Updates; n++)
        {
            var k = (n - 1) % workers;
            var s = servedVersion[k];
            versions[(int)s].CopyTo(stage.Parameters);
            stage.PushParameters();
            samplers[k].Indices(gradientsOf[k]++, indices);
            for (var i = 0; i < Batch; i++)
            {
                train.Sample(indices[i]).CopyTo(images.AsSpan(i * train.SampleSize));
                labels[i] = train.Labels[indices[i]];
            }

            stage.ZeroGradients();
            stage.ForwardLossBackward(images, Batch, labels, 1f, []);
            stage.PullGradients();
            var g = stage.Gradients;
            var alpha = (float)(Lr * Math.Pow(n, -Q));
            var next = versions[^1].ToArray();
            for (var i = 0; i < next.Length; i++)
            {
                next[i] -= alpha * g[i];
            }

            versions.Add(next);
            delays.Add(n - 1 - s);
            servedVersion[k] = Math.Max(0, n - (long)Math.Floor(C * Math.Pow(n, P)));
        }

        return (versions[^1], delays);
    }
}
