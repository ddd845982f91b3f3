using System.Globalization;

namespace MpiPipeline.RankTests;

/// <summary>
/// Layer-wise training (<c>--algo layerwise</c>) under a real mpiexec against single-rank training of the same model
/// on the same samples: the gradient of the first mini-batch and the parameters after 5 SGD steps, 1e-5 relative,
/// for plans that take every kind of transition the engine runs (Allgather, Alltoall(v), halo exchange, the
/// Reduce-scatter and added halos backward). One job per (MPI, n) trains its plans (the RankScenarios
/// "layerwise" scenario); plus bad input.
/// </summary>
public sealed class LayerwiseTests : RankFixture
{
    /// <summary>
    /// Each plan runs once, on one MPI (each MPI runs at n = 2 and 4, every kind of transition on both); mlp on 1x8x8 is
    /// flatten 64, linear 64-256, relu, linear 256-4; cnn is conv 1-16, relu, pool (16x4x4), conv 16-32, relu, pool
    /// (32x2x2), flatten 128, linear 128-128, relu, linear 128-4.
    /// </summary>
    public static IEnumerable<TestCaseData> Jobs()
    {
        yield return Job(MpiFlavor.Mpich, 2,
            ("mlp", "data"),
            // height split with a halo exchange, then sample and channel splits: Alltoall(v) between them, Allgather into the linear
            ("cnn", "n1c1h2 n1c1h2 n1c1h2 n1c1h2 n1c1h2 n2c1h1 n1c2h1 n1c2h1 n1c2h1 n2c1h1"));
        yield return Job(MpiFlavor.OpenMpi, 2,
            ("mlp", "model"),         // flatten n2 (one input channel), the linears channel split: Allgather, Alltoall(v) into the loss
            ("cnn", "model"));
        yield return Job(MpiFlavor.Mpich, 4,
            ("mlp", "n4c1h1 n2c2h1 n2c2h1 n1c4h1"),
            // four-way height split (one row each after the first pool: a halo of whole rows), then mixed
            ("cnn", "n1c1h4 n1c1h4 n1c1h4 n1c1h4 n1c1h4 n2c1h2 n4c1h1 n2c2h1 n2c2h1 n4c1h1"));
        yield return Job(MpiFlavor.OpenMpi, 4,
            ("mlp", "auto"),          // whatever the search picks on this machine (rank 0 searches, broadcasts the plan)
            ("cnn", "data"),
            // channel-split convs, a conv split 2 x 2, a relu split along height, channel-split linears
            ("cnn", "n1c4h1 n1c4h1 n1c4h1 n2c2h1 n2c1h2 n4c1h1 n1c4h1 n1c4h1 n1c4h1 n1c4h1"));

        static TestCaseData Job(MpiFlavor flavor, int ranks, params (string Model, string Plan)[] plans) =>
            new TestCaseData(flavor, ranks, plans).SetArgDisplayNames(flavor.Name, $"n={ranks}");
    }

    [TestCaseSource(nameof(Jobs))]
    public void EveryPlanEqualsSingleRankTraining(MpiFlavor flavor, int ranks, (string Model, string Plan)[] plans)
    {
        var directory = NewStem("layerwise");
        Directory.CreateDirectory(directory);
        var runs = plans.Select((run, k) => $"{run.Model}={PlanArgument(directory, k, run.Model, ranks, run.Plan)}").ToArray();
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Scenarios, ["layerwise", directory, .. runs], Limit);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        for (var k = 0; k < plans.Length; k++)
        {
            var what = $"{plans[k].Model} plan '{plans[k].Plan}'";
            var reference = Path.Combine(directory, $"ref-{plans[k].Model}");
            var run = Path.Combine(directory, $"run-{k}");
            var expected = Floats(reference + ".grad");
            Assert.That(expected.Max(Math.Abs), Is.GreaterThan(1e-3), $"{what}: a comparison of real gradients");
            AssertClose(Floats(run + ".grad"), expected, 1e-5, $"{what}: gradient of the first mini-batch");
            AssertClose(Floats(run + ".bin"), Floats(reference + ".bin"), 1e-5, $"{what}: parameters after 5 steps");
            if (ExpectedRounds(plans[k], ranks) is { } rounds)
            {
                Assert.That(File.ReadAllText(run + ".rounds"), Is.EqualTo(rounds.ToString(CultureInfo.InvariantCulture)), $"{what}: communication rounds");
            }
        }
    }

    /// <summary>
    /// The rounds of 5 steps where they are known by hand: mlp data parallel Allreduces its two linear layers' gradients
    /// per step and moves no activation (every transfer the identity); mlp model parallel syncs nothing (no replicas) and
    /// calls MPI for three transfers each way per step (flatten to linear and relu to linear: Allgather, forward /
    /// Reduce-scatter, backward; the channel-split logits to the loss's sample split: Alltoall(v)).
    /// </summary>
    private static int? ExpectedRounds((string Model, string Plan) run, int ranks) => (run.Model, run.Plan, ranks) switch
    {
        ("mlp", "data", _) => 5 * 2,
        ("mlp", "model", 2) => 5 * 3 * 2,
        _ => null,
    };

    public static IEnumerable<TestCaseData> BadInputs()
    {
        yield return Case(MpiFlavor.Mpich, "a height split of a linear layer", ["--model", "mlp", "--plan", "n2c1h1 n1c1h2 n1c1h2 n2c1h1"],
            "layer 1 (linear 64 256) is n1c1h2, which the layer-wise engine refuses: its output is flat");

        static TestCaseData Case(MpiFlavor flavor, string name, string[] args, string message) =>
            new TestCaseData(flavor, args, message).SetArgDisplayNames(flavor.Name, name);
    }

    /// <summary>Bad input: one clear message, from rank 0, every rank exits non-zero promptly, no results file (one job: the
    /// engine's refusals share this path with every up-front check).</summary>
    [TestCaseSource(nameof(BadInputs))]
    public void BadInputIsReportedOnceAndEveryRankExits(MpiFlavor flavor, string[] args, string message)
    {
        var output = NewStem("bad") + ".json";
        var directory = NewStem("bad-plan");
        Directory.CreateDirectory(directory);
        var planIndex = Array.IndexOf(args, "--plan") + 1;
        args[planIndex] = PlanArgument(directory, 0, args[Array.IndexOf(args, "--model") + 1], 2, args[planIndex]);
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe,
            ["train", "--algo", "layerwise", "--dataset", "synthetic:1x8x8:4", "--batch", "16", "--threads", "1", "--max-steps", "2", .. args, "--output", output],
            Prompt * 6);
        AssertStoppedByBadInput(result, Prompt * 1.5, output);
        Assert.That(result.Output, Does.Contain(message), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "rank 0: "), Is.EqualTo(1), "reported once, by rank 0: " + result);
    }

    /// <summary>A word (data, model, auto) as it is; configurations separated by spaces as a plan file, written here.</summary>
    private static string PlanArgument(string directory, int index, string model, int ranks, string plan)
    {
        if (!plan.Contains(' '))
        {
            return plan;
        }

        var path = Path.Combine(directory, $"plan-{index}.json");
        var layers = string.Join(", ", plan.Split(' ').Select(layer => $"\"{layer}\""));
        File.WriteAllText(path, $$"""{"model": "{{model}}", "ranks": {{ranks}}, "layers": [{{layers}}]}""");
        return path;
    }

    /// <summary>||a - b|| &lt;= tolerance ||b|| and every |a_i - b_i| &lt;= tolerance max |b|: relative, robust to entries near 0.</summary>
    private static void AssertClose(float[] actual, float[] expected, double tolerance, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double difference = 0, norm = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            var d = (double)actual[i] - expected[i];
            difference += d * d;
            norm += (double)expected[i] * expected[i];
        }

        Assert.That(Math.Sqrt(difference / norm), Is.LessThanOrEqualTo(tolerance), $"{what}: relative difference");
        Assert.That(MaxDifference(actual, expected), Is.LessThanOrEqualTo(tolerance * expected.Max(Math.Abs)), $"{what}: largest difference");
    }
}
