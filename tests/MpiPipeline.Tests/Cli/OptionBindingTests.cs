using System.Collections;
using System.CommandLine;
using System.Globalization;
using MpiPipeline.Benchmarks;
using MpiPipeline.Cli;
using MpiPipeline.Cli.Verbs;
using MpiPipeline.Pipeline;
using MpiPipeline.Scaling;
using MpiPipeline.Smoothing;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Cli;

/// <summary>
/// Every flag of `train`, `pprs`, `bench bridge` and `scaling` reaches its own field of the verb's options record and
/// nothing else: each case gives one flag and compares the whole record (every property, lists by their items) with
/// the defaults changed in that one field, so a swapped, dropped or mis-defaulted option fails here.
/// </summary>
[TestFixture]
internal sealed class OptionBindingTests
{
    private sealed record Verb(Func<string[], object> Read, Func<IEnumerable<string>> Flags, object Defaults);

    private static Verb Of<TRecord>(Func<OptionTable<TRecord>> table)
        where TRecord : new()
    {
        Command CommandOf(OptionTable<TRecord> t)
        {
            var command = new Command("verb");
            t.AddTo(command);
            return command;
        }

        return new Verb(
            args =>
            {
                var t = table();
                var parse = CommandOf(t).Parse(args);
                Assert.That(parse.Errors, Is.Empty, string.Join("\n", parse.Errors.Select(e => e.Message)));
                return t.Read(parse)!;
            },
            () => CommandOf(table()).Options.SelectMany(o => o.Aliases.Append(o.Name)),
            new TRecord()!);
    }

    private static readonly Dictionary<string, Verb> Verbs = new()
    {
        ["train"] = Of(TrainOptionTable.Create),
        ["pprs"] = Of(PprsVerb.Options),
        ["bench bridge"] = Of(BenchBridgeVerb.Options),
        ["scaling"] = Of(ScalingVerb.Options),
        ["dicod"] = Of(DicodVerb.Options),
        ["plan"] = Of(PlanVerb.Options),
    };

    /// <summary>The record's properties as text, lists item by item (records compare lists by reference).</summary>
    private static string Show(object record) => string.Join("\n", record.GetType().GetProperties().Select(p => $"{p.Name} = {Text(p.GetValue(record))}"));

    private static string Text(object? value) => value is IEnumerable items and not string
        ? "[" + string.Join(", ", items.Cast<object?>().Select(Text)) + "]"
        : Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null";

    private static readonly TrainOptions Train = new();
    private static readonly PprsOptions Pprs = new();
    private static readonly BridgeBenchmarkOptions Bridge = new();
    private static readonly ScalingOptions Sweep = new();
    private static readonly MpiPipeline.Dicod.DicodOptions Csc = new();
    private static readonly MpiPipeline.Layerwise.PlanOptions Plan = new();

    public static IEnumerable<TestCaseData> Flags()
    {
        TestCaseData Case(string verb, object expected, params string[] args) => new TestCaseData(verb, args, expected).SetArgDisplayNames(verb, args[0]);
        yield return Case("train", Train with { Algorithm = "local-sgd" }, "--algo", "local-sgd");
        yield return Case("train", Train with { Model = "mlp" }, "--model", "mlp");
        yield return Case("train", Train with { Epochs = 7 }, "--epochs", "7");
        yield return Case("train", Train with { Batch = 96 }, "--batch", "96");
        yield return Case("train", Train with { LearningRate = 0.125 }, "--lr", "0.125");
        yield return Case("train", Train with { Optimizer = OptimizerKind.Adam }, "--optimizer", "adam");
        yield return Case("train", Train with { Momentum = 0.5 }, "--momentum", "0.5");
        yield return Case("train", Train with { Nesterov = true }, "--nesterov");
        yield return Case("train", Train with { WeightDecay = 0.001 }, "--weight-decay", "0.001");
        yield return Case("train", Train with { Tau = 8 }, "--tau", "8");
        yield return Case("train", Train with { Redundancy = 3 }, "--redundancy", "3");
        yield return Case("train", Train with { Split = DataSplit.Chunks }, "--split", "chunks");
        yield return Case("train", Train with { Split = DataSplit.ChunksByClass }, "--split", "chunks-by-class");
        yield return Case("train", Train with { FailRank = 2 }, "--fail-rank", "2");
        yield return Case("train", Train with { FailStep = 11 }, "--fail-step", "11");
        yield return Case("train", Train with { Seed = 42 }, "--seed", "42");
        yield return Case("train", Train with { Threads = 3 }, "--threads", "3");
        yield return Case("train", Train with { Device = "cuda:1" }, "--device", "cuda:1");
        yield return Case("train", Train with { DataSet = "synthetic:3x8x8:4" }, "--dataset", "synthetic:3x8x8:4");
        yield return Case("train", Train with { DataDirectory = "/data/fm" }, "--data", "/data/fm");
        yield return Case("train", Train with { DataSet = "idx:/data/kmnist" }, "--dataset", "idx:/data/kmnist");
        yield return Case("train", Train with { TrainSamples = 1000 }, "--train-samples", "1000");
        yield return Case("train", Train with { TestSamples = 200 }, "--test-samples", "200");
        yield return Case("train", Train with { MaxSteps = 33 }, "--max-steps", "33");
        yield return Case("train", Train with { CurveEvery = 5 }, "--curve-every", "5");
        yield return Case("train", Train with { TrainLossEvery = 7 }, "--train-loss-every", "7");
        yield return Case("train", Train with { Exchange = "allreduce" }, "--exchange", "allreduce");
        yield return Case("train", Train with { Stages = 3 }, "--stages", "3");
        yield return Case("train", Train with { Stages = 3 }, "--pipeline", "3");
        yield return Case("train", Train with { Replicas = 2 }, "--data-parallel", "2");
        yield return Case("train", Train with { Replicas = 2 }, "--replicas", "2");
        yield return Case("train", Train with { MicroBatches = 8 }, "--micro-batches", "8");
        yield return Case("train", Train with { Schedule = ScheduleKind.GPipe }, "--schedule", "gpipe");
        yield return Case("train", Train with { Balance = "3,2,2" }, "--balance", "3,2,2");
        yield return Case("train", Train with { Plan = "plan.json" }, "--plan", "plan.json");
        yield return Case("train", Train with { PartitionBy = PartitionCost.Parameters }, "--partition", "parameters");
        yield return Case("train", Train with { TracePath = "t.json" }, "--trace", "t.json");
        yield return Case("train", Train with { NoOverlap = true }, "--no-overlap");
        yield return Case("train", Train with { BucketMegabytes = 0.5 }, "--bucket-mb", "0.5");
        yield return Case("train", Train with { Compress = "ecq:4,256,0.5,0.5" }, "--compress", "ecq:4,256,0.5,0.5");
        yield return Case("train", Train with { CudaAwareMpi = true }, "--cuda-aware-mpi");
        yield return Case("train", Train with { CheckpointDirectory = "ck" }, "--checkpoint", "ck");
        yield return Case("train", Train with { CheckpointEvery = "epoch" }, "--checkpoint-every", "epoch");
        yield return Case("train", Train with { CheckpointKeep = 3 }, "--checkpoint-keep", "3");
        yield return Case("train", Train with { ResumePath = "ck" }, "--resume", "ck");
        yield return Case("train", Train with { Delay = "poly:0.5,1" }, "--delay", "poly:0.5,1");
        yield return Case("train", Train with { StepSchedule = "poly:0.75" }, "--step-schedule", "poly:0.75");
        yield return Case("train", Train with { FixedArrival = true }, "--arrival", "fixed");
        yield return Case("train", Train with { DelayHistogramPath = "h.json" }, "--delay-histogram", "h.json");
        yield return Case("train", Train with { SlowWorkers = "1:4" }, "--slow-workers", "1:4");
        yield return Case("train", Train with { OutputPath = "r.json" }, "--output", "r.json");
        yield return Case("train", Train with { ParametersPath = "p.bin" }, "--save-parameters", "p.bin");
        yield return Case("train", Train with { FirstGradientsPath = "g.bin" }, "--save-first-gradients", "g.bin");
        yield return Case("train", Train with { OnNonFinite = NonFinitePolicy.SkipStep }, "--on-nonfinite", "skip-step");
        yield return Case("train", Train with { OnNonFinite = NonFinitePolicy.SkipStep, SkippedStepsLimit = 3 }, "--max-skipped-steps", "3", "--on-nonfinite", "skip-step");

        yield return Case("pprs", Pprs with { Problem = "smooth" }, "--problem", "smooth");
        yield return Case("pprs", Pprs with { Depth = 5 }, "--delta", "5");
        yield return Case("pprs", Pprs with { Samples = [1, 4] }, "--samples", "1,4");
        yield return Case("pprs", Pprs with { Iterations = 50 }, "--iterations", "50");
        yield return Case("pprs", Pprs with { Budget = 1000 }, "--budget", "1000");
        yield return Case("pprs", Pprs with { Run = ["gd", "pprs"] }, "--method", "gd,pprs");
        yield return Case("pprs", Pprs with { Gamma = 0.1 }, "--gamma", "0.1");
        yield return Case("pprs", Pprs with { Step = 0.2 }, "--step", "0.2");
        yield return Case("pprs", Pprs with { PprsStep = 0.3 }, "--pprs-step", "0.3");
        yield return Case("pprs", Pprs with { Seed = 7 }, "--seed", "7");
        yield return Case("pprs", Pprs with { Dimension = 11 }, "--dimension", "11");
        yield return Case("pprs", Pprs with { Model = "mlp" }, "--model", "mlp");
        yield return Case("pprs", Pprs with { ParametersPath = "p.bin" }, "--parameters", "p.bin");
        yield return Case("pprs", Pprs with { Images = 4 }, "--images", "4");
        yield return Case("pprs", Pprs with { Kappa = 5 }, "--kappa", "5");
        yield return Case("pprs", Pprs with { Penalty = 0.002 }, "--lambda", "0.002");
        yield return Case("pprs", Pprs with { DataDirectory = "/data/fm" }, "--data", "/data/fm");
        yield return Case("pprs", Pprs with { DataSet = "npy:/data/x" }, "--dataset", "npy:/data/x");
        yield return Case("pprs", Pprs with { Checkpoints = 3 }, "--checkpoints", "3");
        yield return Case("pprs", Pprs with { Batched = true }, "--batched");
        yield return Case("pprs", Pprs with { MonitorByForwardPass = true }, "--monitor", "pipeline");
        yield return Case("pprs", Pprs with { Terms = 4 }, "--terms", "4");
        yield return Case("pprs", Pprs with { Lipschitz = 2.5 }, "--lipschitz", "2.5");
        yield return Case("pprs", Pprs with { TheoryStep = true }, "--theory-step");
        yield return Case("pprs", Pprs with { Precision = 0.05 }, "--precision", "0.05");
        yield return Case("pprs", Pprs with { StationaritySamples = 9 }, "--stationarity-samples", "9");
        yield return Case("pprs", Pprs with { Schedule = ChainSchedule.OneAtATime }, "--schedule", "one-at-a-time");

        yield return Case("bench bridge", Bridge with { Model = "cnn" }, "--model", "cnn");
        yield return Case("bench bridge", Bridge with { Threads = 2 }, "--threads", "2");
        yield return Case("bench bridge", Bridge with { TimedSteps = 5 }, "--steps", "5");
        yield return Case("bench bridge", Bridge with { WarmupSteps = 0 }, "--warmup", "0");
        yield return Case("bench bridge", Bridge with { Batch = 64 }, "--batch", "64");
        yield return Case("bench bridge", Bridge with { LearningRate = 0.1 }, "--lr", "0.1");
        yield return Case("bench bridge", Bridge with { Momentum = 0.5 }, "--momentum", "0.5");
        yield return Case("bench bridge", Bridge with { Seed = 7 }, "--seed", "7");
        yield return Case("bench bridge", Bridge with { DataDirectory = "/data/fm" }, "--data", "/data/fm");
        yield return Case("bench bridge", Bridge with { Device = "cuda:1" }, "--device", "cuda:1");
        yield return Case("bench bridge", Bridge with { DataSet = "synthetic:1x28x28:10" }, "--dataset", "synthetic:1x28x28:10");
        yield return Case("bench bridge", Bridge with { DataSet = "cifar10:/data/cifar" }, "--dataset", "cifar10:/data/cifar");

        yield return Case("scaling", Sweep with { Ranks = [1, 2] }, "--ranks", "1,2");
        yield return Case("scaling", Sweep with { Modes = [ScalingMode.Weak] }, "--mode", "weak");
        yield return Case("scaling", Sweep with { Repetitions = 5 }, "--repetitions", "5");
        yield return Case("scaling", Sweep with { Algorithm = "local-sgd" }, "--algo", "local-sgd");
        yield return Case("scaling", Sweep with { Model = "cnn" }, "--model", "cnn");
        yield return Case("scaling", Sweep with { GlobalBatch = 64 }, "--global-batch", "64");
        yield return Case("scaling", Sweep with { PerRankBatch = 16 }, "--per-rank-batch", "16");
        yield return Case("scaling", Sweep with { Steps = 30 }, "--steps", "30");
        yield return Case("scaling", Sweep with { WarmupSteps = 4 }, "--warmup-steps", "4");
        yield return Case("scaling", Sweep with { ThreadsPerRank = 2 }, "--threads", "2");
        yield return Case("scaling", Sweep with { Tau = 4 }, "--tau", "4");
        yield return Case("scaling", Sweep with { TrainArguments = ["--device", "cuda", "--lr", "0.1"] }, "--train-args", "--device cuda --lr 0.1");
        yield return Case("scaling", Sweep with { TrainArguments = ["--dataset", "npy:/data/x"] }, "--train-args", "--dataset npy:/data/x");
        yield return Case("scaling", Sweep with { Launcher = LauncherKind.Srun }, "--launcher", "srun");
        yield return Case("scaling", Sweep with { Mpi = MpiFlavor.OpenMpi }, "--mpi", "openmpi");
        yield return Case("scaling", Sweep with { SrunMpi = "pmix" }, "--srun-mpi", "pmix");
        yield return Case("scaling", Sweep with { Hostfile = "hosts" }, "--hostfile", "hosts");
        yield return Case("scaling", Sweep with { Bench = false }, "--no-bench");
        yield return Case("scaling", Sweep with { BenchRanks = [2, 4] }, "--bench-ranks", "2,4");
        yield return Case("scaling", Sweep with { BenchMaxBytes = 1 << 20 }, "--bench-max-size", "1MiB");
        yield return Case("scaling", Sweep with { BenchSamples = 3 }, "--bench-samples", "3");
        yield return Case("scaling", Sweep with { ProjectRanks = [16, 32] }, "--project", "16,32");
        yield return Case("scaling", Sweep with { PipelineStages = 2 }, "--stages", "2");
        yield return Case("scaling", Sweep with { MicroBatches = 4 }, "--micro-batches", "4");
        yield return Case("scaling", Sweep with { ActivationBytesPerSample = 2048 }, "--activation-bytes", "2048");
        yield return Case("scaling", Sweep with { AssumedNetwork = (2e-6, 12.5e9) }, "--assume-network", "2,12.5");
        yield return Case("scaling", Sweep with { Network = new EmulatedNetwork("10gbit", "50us") }, "--network", "10gbit,50us");
        yield return Case("scaling", Sweep with { OutputDirectory = "out" }, "--out", "out");
        yield return Case("scaling", Sweep with { WorkDirectory = "work" }, "--work", "work");
        yield return Case("scaling", Sweep with { Reuse = true }, "--reuse");
        yield return Case("scaling", Sweep with { RunTimeout = TimeSpan.FromSeconds(60) }, "--timeout", "60");
        yield return Case("scaling", Sweep with { CommandLine = "mpipipe scaling" }, "--command-line", "mpipipe scaling");

        yield return Case("dicod", Csc with { Atoms = 7 }, "--atoms", "7");
        yield return Case("dicod", Csc with { AtomLength = 9 }, "--atom-length", "9");
        yield return Case("dicod", Csc with { Length = 1234 }, "--length", "1234");
        yield return Case("dicod", Csc with { Channels = 3 }, "--channels", "3");
        yield return Case("dicod", Csc with { Lambda = 0.25 }, "--lambda", "0.25");
        yield return Case("dicod", Csc with { Tol = 1e-4 }, "--tol", "1e-4");
        yield return Case("dicod", Csc with { Seed = 9 }, "--seed", "9");
        yield return Case("dicod", Csc with { Density = 0.01 }, "--density", "0.01");
        yield return Case("dicod", Csc with { Noise = 0.5 }, "--noise", "0.5");
        yield return Case("dicod", Csc with { SignalPath = "x.npy" }, "--signal", "x.npy");
        yield return Case("dicod", Csc with { DictionaryPath = "d.npy" }, "--dictionary", "d.npy");
        yield return Case("dicod", Csc with { Solver = "fista" }, "--solver", "fista");
        yield return Case("dicod", Csc with { Local = "lgcd" }, "--local", "lgcd");
        yield return Case("dicod", Csc with { SubSegments = 4 }, "--sub-segments", "4");
        yield return Case("dicod", Csc with { MaxUpdates = 100 }, "--max-updates", "100");
        yield return Case("dicod", Csc with { MaxIterations = 20 }, "--max-iterations", "20");

        yield return Case("plan", Plan with { Model = "cnn-wide" }, "--model", "cnn-wide");
        yield return Case("plan", Plan with { Ranks = 4 }, "--ranks", "4");
        yield return Case("plan", Plan with { Batch = 64 }, "--batch", "64");
        yield return Case("plan", Plan with { Network = new EmulatedNetwork("1gbit", "50us") }, "--network", "1gbit,50us");
        yield return Case("plan", Plan with { Threads = 2 }, "--threads", "2");
        yield return Case("plan", Plan with { ComputeCache = "times.json" }, "--compute-cache", "times.json");
        yield return Case("plan", Plan with { Explain = true }, "--explain");
        yield return Case("plan", Plan with { Output = "plan.json" }, "--output", "plan.json");
        yield return Case("plan", Plan with { Write = MpiPipeline.Layerwise.PlanStrategy.ModelParallel }, "--write", "model-parallel");
    }

    [TestCaseSource(nameof(Flags))]
    public void EachFlagSetsItsOwnField(string verb, string[] args, object expected) => Assert.That(Show(Verbs[verb].Read(args)), Is.EqualTo(Show(expected)));

    [TestCase("train")]
    [TestCase("pprs")]
    [TestCase("bench bridge")]
    [TestCase("scaling")]
    [TestCase("dicod")]
    [TestCase("plan")]
    public void NoFlagsGiveTheRecordsDefaults(string verb) => Assert.That(Show(Verbs[verb].Read([])), Is.EqualTo(Show(Verbs[verb].Defaults)));

    [TestCase("train")]
    [TestCase("pprs")]
    [TestCase("bench bridge")]
    [TestCase("scaling")]
    [TestCase("dicod")]
    [TestCase("plan")]
    public void EveryFlagOfTheCommandIsCovered(string verb)
    {
        var covered = Flags().Where(c => (string)c.Arguments[0]! == verb)
            .SelectMany(c => ((string[])c.Arguments[1]!).Where(a => a.StartsWith("--", StringComparison.Ordinal))).ToHashSet();
        var flags = Verbs[verb].Flags().Where(a => a.StartsWith("--", StringComparison.Ordinal));
        Assert.That(flags.Where(f => !covered.Contains(f)), Is.Empty, $"a {verb} flag without a binding case");
    }

    /// <summary>--batch means two things: a synchronous step's global batch, cut over the workers, and dasgd's batch of
    /// each gradient (its header prints the same: ConsoleTrainingReporter.BatchText, asserted by the dasgd rank test).</summary>
    [Test]
    public void BatchHelpSaysWhatDasgdDoesWithIt()
    {
        var command = new Command("train");
        TrainOptionTable.Create().AddTo(command);
        var help = command.Options.Single(o => o.Name == "--batch").Description;
        Assert.That(help, Does.Contain("(each takes batch / workers)").And.Contain("dasgd: each worker computes every gradient (one update) on a whole batch"));
    }

    /// <summary>compare sets the algorithm and the options algorithms own per run and writes its own files: it takes the rest.</summary>
    [Test]
    public void CompareTakesTheCommonTrainingOptions()
    {
        var command = new Command("compare");
        TrainOptionTable.Common().AddTo(command);
        Assert.That(command.Options.Select(o => o.Name), Is.EquivalentTo(new[]
        {
            "--model", "--epochs", "--batch", "--lr", "--optimizer", "--momentum", "--nesterov", "--weight-decay", "--seed", "--threads",
            "--device", "--exchange", "--dataset", "--data", "--train-samples", "--test-samples", "--max-steps", "--curve-every",
            "--on-nonfinite", "--max-skipped-steps",
        }));
    }
}
