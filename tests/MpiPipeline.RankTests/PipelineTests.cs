using System.Text.Json;

namespace MpiPipeline.RankTests;

/// <summary>
/// Pipelined training (<c>--algo pipeline</c>) under a real mpiexec against single-rank training of the same model on
/// the same samples: the averaged gradient of the first mini-batch and the parameters after 20 steps; the activations
/// each stage held; the pipeline x data-parallel grid; a rank failing mid-pipeline; bad input.
/// <para>
/// The matrix S = 2, 3, 4 x M = 1, 2, 4, 8 x {GPipe, 1F1B} has 24 cells; each runs once, on MPICH or Open MPI
/// alternately (a cell and its other schedule run on different MPIs), so every cell is checked and each MPI runs
/// every S and every M with both schedules, at half the launches of running all cells on both.
/// </para>
/// </summary>
public sealed class PipelineTests : RankFixture
{
    /// <summary>
    /// deep-mlp:4:32 has 8 layers (flatten, 4 linear of width 32, relu between); batch 16 cuts into 1..8 micro-batches;
    /// plain SGD with a little momentum; 20 steps over 320 samples; one thread per rank.
    /// </summary>
    private static readonly string[] Small =
    [
        "--model", "deep-mlp:4:32", .. FashionMnistPrefix.Samples(320, 100), "--threads", "1",
        "--batch", "16", "--lr", "0.1", "--momentum", "0.5", "--max-steps", "20",
    ];

    private TrainRun? reference;

    /// <summary>One rank, the whole model, batch 16: what every pipelined run must reproduce (it does not depend on the MPI).</summary>
    private TrainRun Reference => reference ??= Train(MpiFlavor.Mpich, 1, "single", [.. Small, "--algo", "single"], firstGradients: true);

    public static IEnumerable<TestCaseData> Matrix()
    {
        foreach (var stages in new[] { 2, 3, 4 })
        {
            foreach (var microBatches in new[] { 1, 2, 4, 8 })
            {
                foreach (var schedule in new[] { "gpipe", "1f1b" })
                {
                    var index = stages + Array.IndexOf([1, 2, 4, 8], microBatches) + (schedule == "gpipe" ? 0 : 1);
                    var flavor = index % 2 == 0 ? MpiFlavor.Mpich : MpiFlavor.OpenMpi;
                    yield return new TestCaseData(flavor, stages, microBatches, schedule)
                        .SetArgDisplayNames(flavor.Name, $"S={stages}", $"M={microBatches}", schedule);
                }
            }
        }
    }

    /// <summary>
    /// S stages, M micro-batches: the first mini-batch's gradient equals one rank's (1e-5 relative), the parameters
    /// after 20 steps too; the stages held M (GPipe) or min(S - s, M) &lt;= S (1F1B) micro-batches' activations;
    /// the trace has a row per rank with the spans of each kind.
    /// </summary>
    [TestCaseSource(nameof(Matrix))]
    public void PipelineEqualsSingleRankTraining(MpiFlavor flavor, int stages, int microBatches, string schedule)
    {
        // The partition varies with S: automatic by parameters for S = 3, explicit balances otherwise.
        string[] partition = stages switch
        {
            2 => ["--balance", "3,5"],
            4 => ["--balance", "1,2,2,3"],
            _ => ["--partition", "parameters"],
        };
        var run = Train(flavor, stages, $"S{stages}-M{microBatches}-{schedule}",
            [.. Small, "--algo", "pipeline", "--stages", stages.ToString(), "--micro-batches", microBatches.ToString(), "--schedule", schedule, .. partition],
            firstGradients: true, trace: true);

        AssertClose(run.FirstGradients, Reference.FirstGradients, 1e-5, "gradient of the first mini-batch");
        AssertClose(run.Parameters, Reference.Parameters, 1e-5, "parameters after 20 steps");
        Assert.That(Reference.FirstGradients.Max(Math.Abs), Is.GreaterThan(1e-3), "a comparison of real gradients");

        var pipeline = run.Json.GetProperty("pipeline");
        var peaks = Ints(pipeline.GetProperty("peakActivationsPerStage"));
        var expected = Enumerable.Range(0, stages).Select(s => schedule == "gpipe" ? microBatches : Math.Min(stages - s, microBatches)).ToArray();
        Assert.That(peaks, Is.EqualTo(expected), "activations held per stage (the bridge's live slots)");
        Assert.That(peaks, Has.All.LessThanOrEqualTo(schedule == "gpipe" ? microBatches : stages));
        Assert.That(Ints(pipeline.GetProperty("scheduledPeakActivationsPerStage")), Is.EqualTo(expected));
        Assert.That(Ints(pipeline.GetProperty("balance")).Sum(), Is.EqualTo(8));
        Assert.That(run.Json.GetProperty("totals").GetProperty("samples").GetInt64(), Is.EqualTo(20 * 16));
        AssertTrace(run.TracePath, stages, microBatches);

        // More stages than this machine's cores (mpiexec runs them all here): the run says its waits sleep.
        var notes = run.Json.GetProperty("notes").EnumerateArray().Select(n => n.GetString()).ToArray();
        var oversubscribed = $"{stages} ranks share {Environment.ProcessorCount} cores on rank 0's node (oversubscribed)";
        Assert.That(notes.Any(n => n!.StartsWith(oversubscribed, StringComparison.Ordinal)), Is.EqualTo(stages > Environment.ProcessorCount),
            $"expected {(stages > Environment.ProcessorCount ? "a" : "no")} note '{oversubscribed}' in: {string.Join(" | ", notes)}");
    }

    /// <summary>
    /// S = 2 stages x D = 2 replicas on 4 ranks equals one rank with the same global batch, with the replicas' gradient
    /// Allreduce in 10 KB buckets overlapped with backward (the default: several buckets per stage)
    /// and with --no-overlap: each within 1e-5 of the single rank, and the two within 1e-6 relative of each other (per
    /// element a bucket's sum over 2 replicas adds the same two numbers as the whole-buffer Allreduce).
    /// </summary>
    [TestCaseSource(nameof(Flavors))]
    public void GridOfTwoByTwoEqualsSingleRankTrainingOverlappedOrNot(MpiFlavor flavor)
    {
        string[] grid = [.. Small, "--algo", "pipeline", "--stages", "2", "--data-parallel", "2", "--micro-batches", "2", "--schedule", "1f1b", "--bucket-mb", "0.01"];
        var overlapped = Train(flavor, 4, "grid", grid, firstGradients: true);
        var whole = Train(flavor, 4, "grid-whole", [.. grid, "--no-overlap"]);
        foreach (var (run, overlap) in new[] { (overlapped, "true"), (whole, "false") })
        {
            Assert.That(run.Json.GetProperty("options").GetProperty("overlap").GetString(), Is.EqualTo(overlap));
            AssertClose(run.Parameters, Reference.Parameters, 1e-5, $"parameters after 20 steps (overlap {overlap})");
            Assert.That(run.Json.GetProperty("initialReplicaSpread").GetDouble(), Is.EqualTo(0));
            Assert.That(run.Json.GetProperty("finalReplicaSpread").GetDouble(), Is.EqualTo(0), "the replicas of each stage stay identical");
            Assert.That(run.Json.GetProperty("totals").GetProperty("communicationRounds").GetInt64(), Is.EqualTo(20), "one Allreduce per mini-batch");
            Assert.That(run.Json.GetProperty("pipeline").GetProperty("replicas").GetInt32(), Is.EqualTo(2));
        }

        AssertClose(overlapped.FirstGradients, Reference.FirstGradients, 1e-5, "gradient of the first mini-batch");
        Assert.That(MaxDifference(overlapped.Parameters, whole.Parameters) / whole.Parameters.Max(Math.Abs), Is.LessThanOrEqualTo(1e-6),
            "overlapped and whole-buffer averaging train the same");
    }

    /// <summary>A rank that throws mid-pipeline (its neighbours blocked in receives) ends the whole job promptly.</summary>
    [TestCaseSource(nameof(Flavors))]
    public void RankThatThrowsMidPipelineEndsTheJob(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 4, MpiLauncher.Mpipipe,
            ["train", .. Small, "--algo", "pipeline", "--stages", "4", "--micro-batches", "4", "--balance", "2,2,2,2"],
            Prompt * 6, [("MPIPIPE_TEST_THROW_AT", "2:1")]);
        AssertFailedWithin(result, Prompt);
        Assert.That(MpiLauncher.Count(result.Output, "rank 2: InvalidOperationException: deliberate failure on stage 2 before forward 2"), Is.EqualTo(1), result.ToString());
    }

    public static IEnumerable<TestCaseData> BadInputs()
    {
        yield return Case(MpiFlavor.Mpich, 4, "S x D != world size", ["--stages", "3"], "the pipeline grid needs S x D = world size, but the job has 4 ranks");
        yield return Case(MpiFlavor.OpenMpi, 4, "S x D != world size", ["--stages", "2", "--data-parallel", "3"], "--stages 2 x --data-parallel 3 = 6 ranks");
        yield return Case(MpiFlavor.Mpich, 3, "balance sum", ["--model", "mlp", "--balance", "1,1,1"], "balance 1,1,1 adds up to 3 layers but the model has 4");
        yield return Case(MpiFlavor.Mpich, 3, "more stages than layers", ["--model", "deep-mlp:1"], "the model 'deep-mlp:1' has only 2 layers");
        yield return Case(MpiFlavor.OpenMpi, 3, "more stages than layers", ["--model", "deep-mlp:1"], "the model 'deep-mlp:1' has only 2 layers");
        yield return Case(MpiFlavor.Mpich, 3, "M does not divide the batch", ["--batch", "48", "--micro-batches", "5"], "--micro-batches 5 does not divide the per-replica batch 48");

        static TestCaseData Case(MpiFlavor flavor, int ranks, string name, string[] args, string message) =>
            new TestCaseData(flavor, ranks, args, message).SetArgDisplayNames(flavor.Name, $"n={ranks}", name);
    }

    /// <summary>Bad input: one clear message, from rank 0, every rank exits non-zero promptly, no results file.</summary>
    [TestCaseSource(nameof(BadInputs))]
    public void BadInputIsReportedOnceAndEveryRankExits(MpiFlavor flavor, int ranks, string[] args, string message)
    {
        var output = NewStem("bad") + ".json";
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Mpipipe,
            ["train", "--algo", "pipeline", "--threads", "1", "--max-steps", "2", .. args, "--output", output], Prompt * 6);
        AssertStoppedByBadInput(result, Prompt * 1.5, output);
        Assert.That(result.Output, Does.Contain(message), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "rank 0: "), Is.EqualTo(1), "reported once, by rank 0: " + result);
    }

    /// <summary>A row per rank (named "rank R"), S * M forward and backward spans in the first step of each rank.</summary>
    private static void AssertTrace(string path, int ranks, int microBatches)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var events = document.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
        var names = events.Where(e => e.GetProperty("name").GetString() == "process_name")
            .Select(e => e.GetProperty("args").GetProperty("name").GetString()).ToList();
        Assert.That(names, Is.EqualTo(Enumerable.Range(0, ranks).Select(r => $"rank {r}")));
        var spans = events.Where(e => e.GetProperty("ph").GetString() == "X").ToList();
        for (var rank = 0; rank < ranks; rank++)
        {
            var mine = spans.Where(e => e.GetProperty("pid").GetInt32() == rank).ToList();
            var categories = mine.Select(e => e.GetProperty("cat").GetString()).Distinct().ToList();
            Assert.That(categories, Is.SupersetOf(new[] { "forward", "backward", "send", "optimizer" }), $"rank {rank}");
            if (rank > 0)
            {
                Assert.That(categories, Does.Contain("recv-wait"), $"rank {rank}");
            }

            Assert.That(mine.Count(e => e.GetProperty("cat").GetString() == "forward"), Is.EqualTo(20 * microBatches), $"rank {rank}: forwards");
            Assert.That(mine.Count(e => e.GetProperty("cat").GetString() == "backward"), Is.EqualTo(20 * microBatches), $"rank {rank}: backwards");
        }
    }

    private static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetInt32())];

    /// <summary>||a - b|| &lt;= tolerance ||b|| and every |a_i - b_i| &lt;= tolerance max |b|: relative, robust to entries near 0.</summary>
    private static void AssertClose(float[] actual, float[] expected, double tolerance, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double difference = 0, norm = 0, largest = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            var d = (double)actual[i] - expected[i];
            difference += d * d;
            norm += (double)expected[i] * expected[i];
            largest = Math.Max(largest, Math.Abs(expected[i]));
        }

        Assert.That(norm, Is.GreaterThan(0), $"{what}: all zero");
        Assert.That(Math.Sqrt(difference / norm), Is.LessThanOrEqualTo(tolerance), $"{what}: relative difference");
        Assert.That(MaxDifference(actual, expected), Is.LessThanOrEqualTo(tolerance * largest), $"{what}: largest difference");
    }
}
