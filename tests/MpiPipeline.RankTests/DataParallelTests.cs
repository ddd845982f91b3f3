using System.Globalization;

namespace MpiPipeline.RankTests;

/// <summary>
/// Data-parallel training under a real mpiexec: the algorithms against each other and against single-rank training
/// (final flat parameters compared), replica consistency, RI-SGD's emulated failure, and bad input.
/// </summary>
public sealed class DataParallelTests : RankFixture
{
    /// <summary>A small, quick run: the MLP, 1536 training samples (from the prefix files), a handful of steps, one thread per rank.</summary>
    private static readonly string[] Small =
    [
        "--model", "mlp", .. FashionMnistPrefix.Samples(1536, 300), "--threads", "1", "--lr", "0.1",
    ];

    private static readonly string[] PsgdCommon = [.. Small, "--batch", "64", "--momentum", "0.9"];

    private TrainRun? singleRank, singleRankOneStep;

    /// <summary>
    /// One rank with the global batch, 8 steps: what every PSGD case must reproduce. A single rank sends nothing, so
    /// its result does not depend on the MPI or the rank count under test: made once for the four cases.
    /// </summary>
    private TrainRun SingleRank => singleRank ??= Train(MpiFlavor.Mpich, 1, "single", [.. PsgdCommon, "--algo", "single", "--max-steps", "8"]);

    /// <summary>The same after 1 step: the 8 steps must have moved the parameters further (made once too).</summary>
    private TrainRun SingleRankOneStep => singleRankOneStep ??= Train(MpiFlavor.Mpich, 1, "one-step", [.. PsgdCommon, "--algo", "single", "--max-steps", "1"]);

    private TrainRun? withRedundancyTwo;

    /// <summary>
    /// RI-SGD with q = 2 on 4 ranks, the run <see cref="RiSgdWithOneChunkEqualsLocalSgdOnChunks"/> tells apart from
    /// local SGD on chunks: it only has to differ by far more than any MPI's rounding, so one run serves both MPIs' cases.
    /// </summary>
    private TrainRun WithRedundancyTwo => withRedundancyTwo ??= Train(MpiFlavor.Mpich, 4, "ri2", [.. RiCommon, "--algo", "ri-sgd", "--redundancy", "2"]);

    private static readonly string[] RiCommon = [.. Small, "--batch", "64", "--max-steps", "12", "--tau", "4"];

    public static IEnumerable<TestCaseData> PsgdCases() => FlavorsAndRanks(2, 4);

    /// <summary>PSGD on n ranks with b = B/n per rank equals one rank with batch B on the same samples.</summary>
    [TestCaseSource(nameof(PsgdCases))]
    public void PsgdEqualsSingleRankTrainingWithTheGlobalBatch(MpiFlavor flavor, int ranks)
    {
        var parallel = Train(flavor, ranks, $"psgd{ranks}", [.. PsgdCommon, "--algo", "psgd", "--max-steps", "8"]);
        Assert.That(MaxDifference(SingleRank.Parameters, parallel.Parameters), Is.LessThan(2e-5));
        Assert.That(MaxDifference(SingleRank.Parameters, SingleRankOneStep.Parameters), Is.GreaterThan(1e-3), "training must have moved the parameters");
        Assert.That(parallel.Json.GetProperty("totals").GetProperty("communicationRounds").GetInt64(), Is.EqualTo(8));

        // More ranks than this machine's cores: the averaging was the polled MPI_Iallreduce, and the run says so.
        var notes = parallel.Json.GetProperty("notes").EnumerateArray().Select(n => n.GetString()!).ToArray();
        var polled = $"{ranks} ranks share {Environment.ProcessorCount} cores on rank 0's node (oversubscribed): the averaging Allreduce is an MPI_Iallreduce";
        Assert.That(notes.Any(n => n.StartsWith(polled, StringComparison.Ordinal)), Is.EqualTo(ranks > Environment.ProcessorCount),
            $"expected {(ranks > Environment.ProcessorCount ? "a" : "no")} note '{polled}' in: {string.Join(" | ", notes)}");
    }

    /// <summary>
    /// Plain SGD (momentum 0) under MPICH, momentum 0.9 under Open MPI: one case per flavour keeps the launches at
    /// four. The flavour only carries the Allreduce, which is the same call in both cases.
    /// </summary>
    public static IEnumerable<TestCaseData> LocalSgdCases() =>
    [
        new TestCaseData(MpiFlavor.Mpich, 0.0).SetArgDisplayNames(MpiFlavor.Mpich.Name, "momentum 0"),
        new TestCaseData(MpiFlavor.OpenMpi, 0.9).SetArgDisplayNames(MpiFlavor.OpenMpi.Name, "momentum 0.9"),
    ];

    /// <summary>
    /// Local SGD with tau = 1 is PSGD: averaging models after each step = averaging gradients, and with momentum too,
    /// as the README says, although each worker keeps its own momentum buffer: the SGD update is linear in the
    /// buffer, so the average of the local buffers is PSGD's buffer. The two runs differ only by float32 rounding
    /// (measured: 5e-8 at momentum 0, 9e-8 at 0.9, a few ulps of parameters up to 0.23); 1e-5 leaves that 100 times
    /// over and is far below what a momentum error moves (momentum 0 against 0.9 differ by 0.16 after these 10 steps).
    /// </summary>
    [TestCaseSource(nameof(LocalSgdCases))]
    public void LocalSgdWithTauOneEqualsPsgd(MpiFlavor flavor, double momentum)
    {
        var given = momentum.ToString(CultureInfo.InvariantCulture);
        string[] common = [.. Small, "--batch", "48", "--max-steps", "10", "--momentum", given];
        var psgd = Train(flavor, 3, "psgd", [.. common, "--algo", "psgd"]);
        var local = Train(flavor, 3, "local", [.. common, "--algo", "local-sgd", "--tau", "1"]);
        Assert.That(local.Json.GetProperty("options").GetProperty("momentum").GetString(), Is.EqualTo(given), "the run used the momentum asked for");
        Assert.That(MaxDifference(psgd.Parameters, local.Parameters), Is.LessThan(1e-5));
    }

    /// <summary>RI-SGD with q = 1 is local SGD on disjoint chunks.</summary>
    [TestCaseSource(nameof(Flavors))]
    public void RiSgdWithOneChunkEqualsLocalSgdOnChunks(MpiFlavor flavor)
    {
        var local = Train(flavor, 4, "local", [.. RiCommon, "--algo", "local-sgd", "--split", "chunks"]);
        var ri = Train(flavor, 4, "ri", [.. RiCommon, "--algo", "ri-sgd", "--redundancy", "1"]);
        Assert.That(MaxDifference(local.Parameters, ri.Parameters), Is.EqualTo(0));
        Assert.That(MaxDifference(local.Parameters, WithRedundancyTwo.Parameters), Is.GreaterThan(1e-4), "q = 2 samples other data");
    }

    /// <summary>Every replica starts identical and is identical after each averaging round (max difference 0).</summary>
    [TestCaseSource(nameof(Flavors))]
    public void ReplicasAreIdenticalAtStartAndAfterAveraging(MpiFlavor flavor)
    {
        var run = Train(flavor, 3, "replicas", [.. Small, "--batch", "48", "--max-steps", "7", "--tau", "3", "--algo", "local-sgd"]);
        Assert.That(run.Json.GetProperty("initialReplicaSpread").GetDouble(), Is.EqualTo(0));
        Assert.That(run.Json.GetProperty("finalReplicaSpread").GetDouble(), Is.EqualTo(0));
        // 7 steps with tau = 3: averagings after steps 3 and 6, and one last round so the run ends with one model.
        Assert.That(run.Json.GetProperty("totals").GetProperty("communicationRounds").GetInt64(), Is.EqualTo(3));
    }

    /// <summary>The same run twice gives the same parameters, bit for bit.</summary>
    [Test]
    public void SameRunTwiceGivesTheSameParameters()
    {
        string[] args = [.. Small, "--batch", "64", "--max-steps", "6", "--algo", "ri-sgd", "--redundancy", "2", "--tau", "2"];
        var first = Train(MpiFlavor.Mpich, 2, "first", args);
        var second = Train(MpiFlavor.Mpich, 2, "second", args);
        Assert.That(second.Parameters, Is.EqualTo(first.Parameters));
    }

    /// <summary>RI-SGD with q = 2 survives a failed worker: the others go on, every chunk still covered.</summary>
    [TestCaseSource(nameof(Flavors))]
    public void RiSgdWithRedundancyTwoSurvivesAFailedWorker(MpiFlavor flavor)
    {
        var run = Train(flavor, 4, "fail-q2", [.. Small, "--batch", "64", "--max-steps", "20", "--tau", "4",
            "--algo", "ri-sgd", "--redundancy", "2", "--fail-rank", "2", "--fail-step", "6"]);
        Assert.That(run.Output, Does.Contain("worker 2 failed at step 6; 3 survivors (0, 1, 3)"));
        Assert.That(run.Output, Does.Contain("every chunk is still covered (q = 2)"));
        Assert.That(run.Output, Does.Contain("worker 2 left the run"));
        Assert.That(run.Json.GetProperty("finalReplicaSpread").GetDouble(), Is.EqualTo(0));
        Assert.That(run.Json.GetProperty("finalTestAccuracy").GetDouble(), Is.GreaterThan(0.3));
    }

    /// <summary>With q = 1 the failed worker's chunk is gone, and the run says which.</summary>
    [TestCaseSource(nameof(Flavors))]
    public void RiSgdWithoutRedundancyReportsTheLostChunk(MpiFlavor flavor)
    {
        var run = Train(flavor, 4, "fail-q1", [.. Small, "--batch", "64", "--max-steps", "12", "--tau", "4",
            "--algo", "ri-sgd", "--redundancy", "1", "--fail-rank", "1", "--fail-step", "5"]);
        Assert.That(run.Output, Does.Contain("chunks lost with the failed worker (q = 1): 1;"));
    }

    /// <summary>
    /// --split chunks-by-class on the real data: the note's classes per chunk are those of the first 1536 training
    /// labels (read here from the file), sorted and cut into 4 chunks of 384, each a few classes; the run trained on
    /// them and evaluated the average model on the training set after steps 4 and 8 (--train-loss-every 4).
    /// </summary>
    [Test]
    public void ChunksByClassHoldFewClassesAndTheTrainingLossIsEvaluated()
    {
        var run = Train(MpiFlavor.Mpich, 4, "by-class", [.. Small, "--batch", "64", "--max-steps", "8", "--tau", "4",
            "--algo", "ri-sgd", "--redundancy", "1", "--split", "chunks-by-class", "--train-loss-every", "4"]);
        var labels = FirstTrainingLabels(1536);
        Array.Sort(labels);
        var chunks = Enumerable.Range(0, 4).Select(k => labels[(k * 384)..((k + 1) * 384)].Distinct().ToArray()).ToArray();
        Assert.That(chunks.Select(c => c.Length), Is.All.InRange(2, 4), "each chunk a few of the 10 classes");
        Assert.That(run.Output, Does.Contain("cut into 4 chunks holding classes " + string.Join("; ", chunks.Select(c => "{" + string.Join(",", c) + "}")) +
            "; with q = 1 the workers hold " + string.Join(", ", chunks.Select(c => c.Length)) + " classes of 10"));
        Assert.That(run.Json.GetProperty("options").GetProperty("split").GetString(), Is.EqualTo("chunks-by-class"));
        var curve = run.Json.GetProperty("trainLossCurve").EnumerateArray().ToArray();
        Assert.That(curve.Select(p => p.GetProperty("step").GetInt64()), Is.EqualTo(new long[] { 4, 8 }));
        Assert.That(curve.Select(p => p.GetProperty("loss").GetDouble()), Is.All.InRange(0.01, 10.0));
        Assert.That(curve[1].GetProperty("accuracy").GetDouble(), Is.GreaterThan(0.15), "8 steps of training on the average model");
    }

    /// <summary>The first <paramref name="count"/> labels of Fashion-MNIST's training file (IDX: 8-byte header, one byte per label).</summary>
    private static int[] FirstTrainingLabels(int count)
    {
        using var file = File.OpenRead("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz");
        using var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress);
        var bytes = new byte[8 + count];
        gzip.ReadExactly(bytes);
        return [.. bytes.Skip(8).Select(b => (int)b)];
    }

    /// <summary>
    /// The models are built for the data's geometry, by both engines: cnn on 3x12x12 samples in 5 classes has
    /// conv 3-16, conv 16-32, linear 32*3*3-128 and linear 128-5 (independently counted here), learns the generated
    /// classes well above chance (20%), and a cnn on flat samples is one clear error.
    /// </summary>
    [Test]
    public void ModelsAreBuiltForTheDataSetsGeometry()
    {
        const long cnnParameters = (3 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 3 * 3 * 128 + 128) + (128 * 5 + 5);
        string[] synthetic = ["--dataset", "synthetic:3x12x12:5", "--model", "cnn", "--threads", "1", "--batch", "64", "--epochs", "2",
            "--test-samples", "512"];
        var psgd = Train(MpiFlavor.Mpich, 2, "synthetic-psgd", [.. synthetic, "--algo", "psgd"]);
        var pipeline = Train(MpiFlavor.OpenMpi, 2, "synthetic-pipeline", [.. synthetic, "--algo", "pipeline", "--stages", "2", "--partition", "parameters"]);
        foreach (var run in new[] { psgd, pipeline })
        {
            Assert.That(run.Parameters, Has.Length.EqualTo(cnnParameters));
            Assert.That(run.Json.GetProperty("options").GetProperty("dataset").GetString(), Is.EqualTo("synthetic:3x12x12:5"));
            Assert.That(run.Json.GetProperty("finalTestAccuracy").GetDouble(), Is.GreaterThan(0.5), run.Output);
            Assert.That(run.Output, Does.Contain("data: synthetic:3x12x12:5, 8192 training / 512 test samples"));
        }

        var output = NewStem("cnn-on-flat") + ".json";
        var result = MpiLauncher.Launch(MpiFlavor.Mpich, 2, MpiLauncher.Mpipipe,
            ["train", "--dataset", "synthetic:100", "--model", "cnn", "--threads", "1", "--output", output], TimeSpan.FromSeconds(60));
        AssertStoppedByBadInput(result, TimeSpan.FromSeconds(15), output);
        Assert.That(MpiLauncher.Count(result.Output, "model 'cnn' takes images of C x H x W values with H and W at least 4; the data's samples are 100"),
            Is.EqualTo(1), result.ToString());
    }

    public static IEnumerable<TestCaseData> BadInputs()
    {
        foreach (var flavor in MpiFlavor.All)
        {
            yield return Case(flavor, "redundancy > ranks", ["--batch", "48", "--algo", "ri-sgd", "--redundancy", "4"], "--redundancy 4 is out of range");
            yield return Case(flavor, "tau < 1", ["--batch", "48", "--algo", "local-sgd", "--tau", "0"], "--tau must be >= 1");
            yield return Case(flavor, "batch not divisible", ["--batch", "100"], "must be divisible by the 3 workers");
            yield return Case(flavor, "data missing", ["--batch", "48", "--data", "/nonexistent/fmnist"], "/nonexistent/fmnist");
            yield return Case(flavor, "unknown data set", ["--batch", "48", "--dataset", "imagenet"], "unknown --dataset 'imagenet'; known: fashion-mnist");
        }

        yield return Case(MpiFlavor.Mpich, "dasgd with BatchNorm", ["--batch", "48", "--algo", "dasgd", "--model", "vgg11-small"],
            "--algo dasgd does not carry BatchNorm running statistics from the workers to the master: --model vgg11-small has BatchNorm layers");

        static TestCaseData Case(MpiFlavor flavor, string name, string[] args, string message) =>
            new TestCaseData(flavor, args, message).SetArgDisplayNames(flavor.Name, name);
    }

    /// <summary>Bad input: one clear message, from rank 0, every rank exits non-zero promptly, no results file.</summary>
    [TestCaseSource(nameof(BadInputs))]
    public void BadInputIsReportedOnceAndEveryRankExits(MpiFlavor flavor, string[] args, string message)
    {
        var output = NewStem("bad") + ".json";
        // Small's flag-value pairs less those the case gives itself (a flag given twice is a usage error).
        var small = Small.Chunk(2).Where(pair => !args.Contains(pair[0])).SelectMany(pair => pair).ToArray();
        var result = MpiLauncher.Launch(flavor, 3, MpiLauncher.Mpipipe, ["train", .. small, .. args, "--output", output], TimeSpan.FromSeconds(60));
        AssertStoppedByBadInput(result, TimeSpan.FromSeconds(15), output);
        Assert.That(result.Output, Does.Contain(message), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "rank 0: "), Is.EqualTo(1), "reported once, by rank 0: " + result);
    }
}
