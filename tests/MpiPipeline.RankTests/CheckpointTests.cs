using MpiPipeline.Training;

namespace MpiPipeline.RankTests;

/// <summary>
/// Checkpoints and resume through real jobs. Exact where the arithmetic is the same: a run killed after a checkpoint
/// and resumed at the same shape ends bit for bit where the uninterrupted run ends (the samples, dropout seeds and
/// rounding draws follow from (seed, rank, step); the checkpoint carries the parameters and the momentum buffers).
/// At another shape (PSGD at 4 ranks from a 2-rank checkpoint, a 2 x 1 pipeline's checkpoint in a 1 x 2 grid) the
/// loaded parameters are exactly the saved ones, and the steps after differ from the uninterrupted run only by the
/// rounding of another reduction order: within a tolerance, not bitwise.
/// </summary>
public sealed class CheckpointTests : RankFixture
{
    private const int Steps = 8;

    private static readonly string[] Small =
    [
        "--model", "mlp", .. FashionMnistPrefix.Samples(2000, 300), "--threads", "1", "--batch", "64", "--epochs", "1",
        "--lr", "0.05", "--curve-every", "1",
    ];

    private (string Folder, float[] Final)? shared;

    public static IEnumerable<TestCaseData> Kills()
    {
        yield return new TestCaseData(MpiFlavor.Mpich, CheckpointStore.KillAtVariable, "1:5", new long[] { 2, 4 })
            .SetArgDisplayNames("mpich", "rank 1 killed at step 5");
        yield return new TestCaseData(MpiFlavor.OpenMpi, CheckpointStore.KillInSaveVariable, "6", new long[] { 2, 4 })
            .SetArgDisplayNames("openmpi", "rank 0 killed while saving step 6");
    }

    /// <summary>
    /// kill -9 of a rank (SIGKILL from the tests' hook) after the checkpoint of step 4, or of rank 0 halfway through
    /// writing the checkpoint of step 6: the checkpoints of steps 2 and 4 are intact (the half-written one is a
    /// temporary file, never a checkpoint), and the run resumed from the folder ends with the uninterrupted run's
    /// parameters, bit for bit. (The uninterrupted run is the shared one under Open MPI: with 2 ranks both MPIs'
    /// sums are a + b, so its parameters are every MPI's.)
    /// </summary>
    [TestCaseSource(nameof(Kills))]
    public void AKilledRunResumesBitForBit(MpiFlavor flavor, string hook, string value, long[] left)
    {
        string[] run = [.. Small, "--algo", "psgd", "--max-steps", $"{Steps}"];
        var (_, reference) = Shared();
        var folder = NewStem($"{flavor.Name}-killed");
        string[] checkpoints = ["--checkpoint", folder, "--checkpoint-every", "2"];

        var killed = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe, ["train", .. run, .. checkpoints], Limit, [(hook, value)]);

        AssertFailedWithin(killed, Limit);
        Assert.That(CheckpointStore.List(folder).Select(c => c.Step), Is.EqualTo(left), killed.ToString());
        var temporaries = Directory.GetFiles(folder, ".step-*.tmp");
        Assert.That(temporaries, Has.Length.EqualTo(hook == CheckpointStore.KillInSaveVariable ? 1 : 0), "the killed save's half file is a temporary");

        var resumed = Train(flavor, 2, "resumed", [.. run, .. checkpoints, "--resume", folder]);

        Assert.That(resumed.Output, Does.Contain($"resumed from {Path.Combine(folder, "step-000000004.ckpt")} after step 4 (saved by 2 rank(s))"));
        Assert.That(resumed.Parameters, Is.EqualTo(reference), "bit for bit the uninterrupted run's parameters");
        Assert.That(resumed.Json.GetProperty("totals").GetProperty("steps").GetInt64(), Is.EqualTo(Steps - 4), "steps 4..7 only");
        Assert.That(CheckpointStore.List(folder).Select(c => c.Step), Is.EqualTo(new long[] { 6, 8 }), "the newest 2 kept");
        Assert.That(Directory.GetFiles(folder, ".step-*.tmp"), Is.Empty, "the next save removed the killed save's temporary");
    }

    /// <summary>
    /// A 2-rank PSGD checkpoint at 4 ranks (the same global batch): the parameters loaded are the saved ones exactly
    /// (a resume with nothing left to run saves them unchanged), and the 4 steps after stay within float rounding of
    /// the 2-rank run's (the momentum buffers came along: without them the steps would differ at the 1e-2 scale).
    /// </summary>
    [Test]
    public void PsgdResumesAtFourRanksFromATwoRankCheckpoint()
    {
        var (folder, twoRankFinal) = Shared();
        var step4 = Path.Combine(folder, CheckpointStore.FileName(4));
        var saved = Checkpoint.Parse(File.ReadAllBytes(step4), step4);
        Assert.That(saved.Header.Workers, Is.EqualTo(2));
        string[] run = [.. Small, "--algo", "psgd", "--resume", step4];

        var loaded = Train(MpiFlavor.OpenMpi, 4, "loaded", [.. run, "--max-steps", "4"]);
        var continued = Train(MpiFlavor.OpenMpi, 4, "continued", [.. run, "--max-steps", $"{Steps}"]);

        Assert.That(loaded.Parameters, Is.EqualTo(saved.GetLayers("parameters", 0, saved.Header.Layers.Count)), "loaded exactly");
        Assert.That(continued.Json.GetProperty("totals").GetProperty("steps").GetInt64(), Is.EqualTo(4), "steps 4..7 only");
        Assert.That(MaxDifference(continued.Parameters, twoRankFinal), Is.LessThan(1e-5), "the 2-rank run's steps 4..7, to rounding");
        Assert.That(MaxDifference(continued.Parameters, loaded.Parameters), Is.GreaterThan(1e-3), "and it trained");
    }

    /// <summary>
    /// A 2 x 1 pipeline's checkpoint (parameters and momentum per layer) in a 1 x 2 grid: one stage with all the
    /// layers, two replicas: loaded exactly, and the steps after within rounding of the 2 x 1 run's.
    /// </summary>
    [Test]
    public void APipelineCheckpointLoadsIntoAnotherGrid()
    {
        var folder = NewStem("pipeline");
        string[] pipeline = [.. Small, "--algo", "pipeline", "--micro-batches", "2", "--partition", "parameters"];
        var twoStages = Train(MpiFlavor.Mpich, 2, "2x1", [.. pipeline, "--stages", "2", "--max-steps", $"{Steps}", "--checkpoint", folder, "--checkpoint-every", "4"]);
        var step4 = Path.Combine(folder, CheckpointStore.FileName(4));
        var saved = Checkpoint.Parse(File.ReadAllBytes(step4), step4);
        Assert.That((saved.Header.Stages, saved.Header.Replicas, saved.Header.OptimizerTensors), Is.EqualTo((2, 1, 1)));

        string[] grid = [.. pipeline, "--stages", "1", "--data-parallel", "2", "--resume", step4];
        var loaded = Train(MpiFlavor.Mpich, 2, "1x2-loaded", [.. grid, "--max-steps", "4"]);
        var continued = Train(MpiFlavor.Mpich, 2, "1x2-continued", [.. grid, "--max-steps", $"{Steps}"]);

        Assert.That(loaded.Parameters, Is.EqualTo(saved.GetLayers("parameters", 0, saved.Header.Layers.Count)), "loaded exactly");
        Assert.That(MaxDifference(continued.Parameters, twoStages.Parameters), Is.LessThan(1e-5), "the 2 x 1 run's steps 4..7, to rounding");
        Assert.That(MaxDifference(continued.Parameters, loaded.Parameters), Is.GreaterThan(1e-3), "and it trained");
    }

    public static IEnumerable<TestCaseData> PerWorkerStates()
    {
        yield return new TestCaseData(MpiFlavor.Mpich, new[] { "--algo", "local-sgd", "--tau", "3", "--optimizer", "adam", "--lr", "0.002" })
            .SetArgDisplayNames("mpich", "local-sgd tau 3 with adam, resumed mid-period");
        yield return new TestCaseData(MpiFlavor.OpenMpi, new[] { "--algo", "ri-sgd", "--tau", "3", "--redundancy", "2" })
            .SetArgDisplayNames("openmpi", "ri-sgd tau 3 q 2, resumed mid-period");
        yield return new TestCaseData(MpiFlavor.Mpich, new[] { "--algo", "psgd", "--compress", "ecq:4,64" })
            .SetArgDisplayNames("mpich", "psgd with ecq residuals");
        yield return new TestCaseData(MpiFlavor.OpenMpi, new[] { "--algo", "pipeline", "--stages", "2", "--data-parallel", "2", "--micro-batches", "2", "--compress", "ecq:4,64" })
            .SetArgDisplayNames("openmpi", "a 2 x 2 pipeline's replicas with ecq residuals");
    }

    /// <summary>
    /// The per-worker states at the same rank count: local SGD's replicas and RI-SGD's, halfway through an averaging
    /// period (tau 3, saved after step 4), with Adam's moments and step count; ECQ's error residuals h_p (psgd's workers, a pipeline's replicas, stored per layer). The run resumed
    /// from step 4 ends bit for bit where the uninterrupted 8-step run ends. Without the per-worker state it could not:
    /// the replicas differ between the workers at step 4, and so do the residuals (the checkpoint holding two different
    /// ones says the state was stored, the parameters say it was loaded and used).
    /// </summary>
    [TestCaseSource(nameof(PerWorkerStates))]
    public void PerWorkerStateResumesBitForBitAtTheSameRankCount(MpiFlavor flavor, string[] algorithm)
    {
        var folder = NewStem($"{flavor.Name}-{algorithm[1]}");
        var lr = Array.IndexOf(algorithm, "--lr");
        var small = lr < 0 ? Small : Small.Select((a, i) => i > 0 && Small[i - 1] == "--lr" ? algorithm[lr + 1] : a).ToArray();
        string[] run = [.. small, .. algorithm.Where((_, i) => lr < 0 || (i != lr && i != lr + 1)), "--max-steps", $"{Steps}",
            "--checkpoint", folder, "--checkpoint-every", "4"];
        var ranks = algorithm.Contains("pipeline") ? 4 : 2;
        var uninterrupted = Train(flavor, ranks, $"{algorithm[1]}-whole", run);
        var step4 = Path.Combine(folder, CheckpointStore.FileName(4));
        var saved = Checkpoint.Parse(File.ReadAllBytes(step4), step4);
        Assert.That(saved.Header.Workers, Is.EqualTo(ranks));
        var own = algorithm.Contains("pipeline") ? Checkpoint.LayerName("replica 1/residual", 1)
            : algorithm.Contains("--compress") ? "worker 1/residual" : "worker 1/parameters";
        var first = own.Replace(" 1/", " 0/", StringComparison.Ordinal);
        Assert.That(saved.Get(own), Is.Not.EqualTo(saved.Get(first)), $"each worker's own state is in the checkpoint ({own} differs from {first})");

        var resumed = Train(flavor, ranks, $"{algorithm[1]}-resumed", [.. run, "--resume", step4]);

        Assert.That(resumed.Json.GetProperty("totals").GetProperty("steps").GetInt64(), Is.EqualTo(Steps - 4), "steps 4..7 only");
        Assert.That(resumed.Parameters, Is.EqualTo(uninterrupted.Parameters), "bit for bit the uninterrupted run's parameters");
        Assert.That(MaxDifference(resumed.Parameters, saved.GetLayers("parameters", 0, saved.Header.Layers.Count)), Is.GreaterThan(1e-4),
            "and it trained after the resume");
        if (ranks == 4)
        {
            // The replicas' residuals cannot be shared among another replica count: 4 x 1 is refused, by rank 0 alone.
            var output = NewStem("pipeline-refused") + ".json";
            string[] other = [.. run, "--resume", step4, "--output", output];
            other[Array.IndexOf(other, "--stages") + 1] = "4";
            other[Array.IndexOf(other, "--data-parallel") + 1] = "1";
            var refused = MpiLauncher.Launch(flavor, 4, MpiLauncher.Mpipipe, ["train", .. other], Limit);
            AssertStoppedByBadInput(refused, Limit, output);
            Assert.That(MpiLauncher.Count(refused.Output, "error-feedback residual, which cannot be shared exactly among D = 1; resume it with 2 data-parallel replicas"),
                Is.EqualTo(1), refused.ToString());
        }
    }

    public static IEnumerable<TestCaseData> BadCheckpoints()
    {
        yield return new TestCaseData(MpiFlavor.Mpich, "corrupt").SetArgDisplayNames("mpich", "a changed byte");
        yield return new TestCaseData(MpiFlavor.OpenMpi, "foreign").SetArgDisplayNames("openmpi", "another model");
        yield return new TestCaseData(MpiFlavor.Mpich, "per-worker").SetArgDisplayNames("mpich", "local-sgd at another rank count");
    }

    /// <summary>A corrupt checkpoint, one of another model, or local SGD's per-worker replicas at another rank count:
    /// one message from rank 0, every rank exits non-zero.</summary>
    [TestCaseSource(nameof(BadCheckpoints))]
    public void CorruptOrForeignCheckpointsAreOneClearError(MpiFlavor flavor, string fault)
    {
        var (folder, _) = Shared();
        var output = NewStem("error") + ".json";
        if (fault == "corrupt")
        {
            var corrupt = NewStem("corrupt") + ".ckpt";
            var bytes = File.ReadAllBytes(Path.Combine(folder, CheckpointStore.FileName(4)));
            bytes[bytes.Length / 2] ^= 0x01;
            File.WriteAllBytes(corrupt, bytes);

            var damaged = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe, ["train", .. Small, "--resume", corrupt, "--output", output], Limit);

            AssertStoppedByBadInput(damaged, Limit, output);
            Assert.That(MpiLauncher.Count(damaged.Output, $"{corrupt} is corrupt: its SHA-256 checksum does not match its contents"), Is.EqualTo(1), damaged.ToString());
            return;
        }

        if (fault == "per-worker")
        {
            var local = NewStem("local-sgd");
            string[] run = [.. Small, "--algo", "local-sgd", "--tau", "2", "--max-steps", "2"];
            Train(flavor, 2, "local-sgd", [.. run, "--checkpoint", local, "--checkpoint-every", "2"]);

            var elsewhere = MpiLauncher.Launch(flavor, 1, MpiLauncher.Mpipipe, ["train", .. run, "--resume", local, "--output", output], Limit);

            AssertStoppedByBadInput(elsewhere, Limit, output);
            Assert.That(MpiLauncher.Count(elsewhere.Output, "holds each worker's own --algo local-sgd's replica and optimizer state for 2 workers, " +
                "which cannot be shared exactly among 1; resume it with 2 ranks (mpiexec -n 2)"), Is.EqualTo(1), elsewhere.ToString());
            return;
        }

        var foreign = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe,
            ["train", .. Small.Select(a => a == "mlp" ? "deep-mlp:2:32" : a), "--resume", folder, "--output", output], Limit);

        AssertStoppedByBadInput(foreign, Limit, output);
        Assert.That(MpiLauncher.Count(foreign.Output, "holds another model: 'mlp' with layers ["), Is.EqualTo(1), foreign.ToString());
        Assert.That(foreign.Output, Does.Contain("this run trains 'deep-mlp:2:32'"));
    }

    /// <summary>A 2-rank PSGD run of 8 steps with checkpoints after steps 4 and 8, made once for the tests that read it.</summary>
    private (string Folder, float[] Final) Shared()
    {
        if (shared is null)
        {
            var folder = NewStem("shared");
            var run = Train(MpiFlavor.OpenMpi, 2, "shared", [.. Small, "--algo", "psgd", "--max-steps", $"{Steps}", "--checkpoint", folder, "--checkpoint-every", "4"]);
            shared = (folder, run.Parameters);
        }

        return shared.Value;
    }
}
