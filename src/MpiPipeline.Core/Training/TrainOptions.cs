using MpiPipeline.Algorithms;
using MpiPipeline.Data;
using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Pipeline;

namespace MpiPipeline.Training;

/// <summary>How each rank's mini-batches are drawn from the training set.</summary>
internal enum DataSplit
{
    /// <summary>One permutation of the whole set per (seed, epoch); rank r takes slice r of each global batch (i.i.d.).</summary>
    Shuffle,

    /// <summary>The set cut into p chunks; worker j holds q of them (j..j+q-1 mod p) and samples only from those.</summary>
    Chunks,

    /// <summary>As <see cref="Chunks"/>, with the samples sorted by label before the cut: each chunk holds few classes (non-i.i.d.).</summary>
    ChunksByClass,
}

/// <summary>The names of <see cref="DataSplit"/> as --split takes them and the results write them.</summary>
internal static class DataSplitNames
{
    public static IReadOnlyList<(string Name, DataSplit Split)> All { get; } =
        [("shuffle", DataSplit.Shuffle), ("chunks", DataSplit.Chunks), ("chunks-by-class", DataSplit.ChunksByClass)];

    public static string Name(this DataSplit split) => All.First(s => s.Split == split).Name;

    /// <summary>True for the splits that cut the set into p chunks (<see cref="RedundantChunks"/>).</summary>
    public static bool IsChunked(this DataSplit split) => split is DataSplit.Chunks or DataSplit.ChunksByClass;
}

/// <summary>What a layer costs for the automatic pipeline partition (<see cref="Partition.ByCost"/>).</summary>
internal enum PartitionCost
{
    /// <summary>Forward + backward time of the layer on one micro-batch, measured at start-up.</summary>
    Time,

    /// <summary>Parameter count (layers without parameters cost 0): deterministic, no measurement.</summary>
    Parameters,
}

internal enum OptimizerKind
{
    Sgd,
    Adam,
}

/// <summary>The flags of <c>mpipipe train</c>, in one place: the CLI's table, the algorithms' own options and the scaling sweep's jobs use them.</summary>
internal static class TrainFlags
{
    public const string Verb = "train", Algorithm = "--algo", Model = "--model", Epochs = "--epochs", Batch = "--batch", LearningRate = "--lr",
        Optimizer = "--optimizer", Momentum = "--momentum", Nesterov = "--nesterov", WeightDecay = "--weight-decay", Seed = "--seed";
    public const string Tau = "--tau", Redundancy = "--redundancy", Split = "--split", FailRank = "--fail-rank", FailStep = "--fail-step";
    public const string Threads = "--threads", Device = "--device", Exchange = "--exchange", DataSet = "--dataset", Data = "--data", TrainSamples = "--train-samples",
        TestSamples = "--test-samples", MaxSteps = "--max-steps", CurveEvery = "--curve-every";
    public const string TrainLossEvery = "--train-loss-every";
    public const string Stages = "--stages", StagesAlias = "--pipeline", Replicas = "--data-parallel", ReplicasAlias = "--replicas",
        MicroBatches = "--micro-batches", Schedule = "--schedule", Balance = "--balance", Partition = "--partition", Trace = "--trace";
    public const string Plan = "--plan";
    public const string NoOverlap = "--no-overlap", BucketMegabytes = "--bucket-mb", Compress = CompressorRegistry.Flag, CudaAwareMpi = "--cuda-aware-mpi";
    public const string Output = "--output", SaveParameters = "--save-parameters", SaveFirstGradients = "--save-first-gradients";
    public const string OnNonFinite = "--on-nonfinite", MaxSkippedSteps = "--max-skipped-steps";
    public const string Checkpoint = "--checkpoint", CheckpointEvery = "--checkpoint-every", CheckpointKeep = "--checkpoint-keep", Resume = "--resume";
    public const string Delay = Async.DelaySchedule.Flag, StepSchedule = Async.StepSchedule.Flag, Arrival = "--arrival",
        DelayHistogram = "--delay-histogram", SlowWorkers = Training.SlowWorkers.Flag;

    /// <summary>Rejects a given <paramref name="value"/> below <paramref name="min"/>: "--flag must be >= min (got value)".</summary>
    public static void RequireAtLeast(string flag, long? value, long min = 1)
    {
        if (value < min)
        {
            throw new InputException($"{flag} must be >= {min} (got {value})");
        }
    }
}

/// <summary>Everything one training run needs; validated once, identically on every rank.</summary>
internal sealed record TrainOptions
{
    public string Algorithm { get; init; } = DataParallel.Psgd.Registration.Name;
    public string Model { get; init; } = "cnn";
    public int Epochs { get; init; } = 2;

    /// <summary>The global mini-batch: summed over the data-parallel workers (each takes Batch / workers).</summary>
    public int Batch { get; init; } = 128;

    public double LearningRate { get; init; } = 0.05;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; }
    public double WeightDecay { get; init; }

    /// <summary>tau: local steps between two model averagings (local SGD, RI-SGD).</summary>
    public int Tau { get; init; } = 1;

    /// <summary>q: data chunks each worker holds (RI-SGD); redundancy mu = q / p.</summary>
    public int Redundancy { get; init; } = 1;

    public DataSplit? Split { get; init; }

    /// <summary>Emulated fail-stop of one worker (RI-SGD): worker FailRank does no step from FailStep on.</summary>
    public int? FailRank { get; init; }

    public long? FailStep { get; init; }

    public long Seed { get; init; } = 1;
    public int? Threads { get; init; }
    public string Device { get; init; } = "cpu";

    /// <summary>What to train on (<see cref="DataSetRegistry"/>); the models are built for its sample shape and classes.</summary>
    public string DataSet { get; init; } = DataSetRegistry.Default;

    public string? DataDirectory { get; init; }

    /// <summary>Use only the first N training / test samples (quick runs, tests); null = all.</summary>
    public int? TrainSamples { get; init; }

    public int? TestSamples { get; init; }

    /// <summary>Stop after this many steps in total (tests); null = Epochs full epochs.</summary>
    public long? MaxSteps { get; init; }

    /// <summary>Steps between two points of the loss curve in the results.</summary>
    public int CurveEvery { get; init; } = 10;

    /// <summary>
    /// Steps between two evaluations of the model's loss on the training set (the objective f itself, not the
    /// mini-batch losses, which under local SGD on non-i.i.d. chunks are each worker's own f_j); the last step is
    /// always evaluated. Null: never.
    /// </summary>
    public int? TrainLossEvery { get; init; }

    /// <summary>With <see cref="TrainLossEvery"/>: evaluate on the first N training samples only (compare's cheaper
    /// estimate of f on a large set); null: all of them.</summary>
    public int? TrainLossSamples { get; init; }

    public string? OutputPath { get; init; }

    /// <summary>Write the flat parameters at the end to this file (raw little-endian float32; tests compare them).</summary>
    public string? ParametersPath { get; init; }

    public bool EvaluateEachEpoch { get; init; } = true;

    /// <summary>What a step with a non-finite loss or gradient does (<see cref="NonFiniteGuard"/>).</summary>
    public NonFinitePolicy OnNonFinite { get; init; }

    /// <summary>With <see cref="NonFinitePolicy.SkipStep"/>: steps skipped at most; the next non-finite one stops the run. Null: the default.</summary>
    public int? SkippedStepsLimit { get; init; }

    public int MaxSkippedSteps => SkippedStepsLimit ?? 10;

    /// <summary>--checkpoint: the folder rank 0 writes checkpoints to (<see cref="CheckpointStore"/>); null: none.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>--checkpoint-every: N (steps) or epoch; null: epoch.</summary>
    public string? CheckpointEvery { get; init; }

    /// <summary>--checkpoint-keep: the newest K checkpoints stay; null: 2.</summary>
    public int? CheckpointKeep { get; init; }

    public int EffectiveCheckpointKeep => CheckpointKeep ?? 2;

    public CheckpointInterval EffectiveCheckpointEvery => CheckpointInterval.Parse(CheckpointEvery ?? "epoch");

    /// <summary>--resume: a checkpoint file, or a folder whose newest checkpoint the run continues from.</summary>
    public string? ResumePath { get; init; }

    /// <summary>How replicas average (<see cref="ExchangeRegistry"/>): today one dense fp32 Allreduce.</summary>
    public string Exchange { get; init; } = ExchangeRegistry.Default;

    /// <summary>--compress: how gradients are compressed on the wire (<see cref="CompressorRegistry"/>); none: dense fp32.</summary>
    public string Compress { get; init; } = CompressorRegistry.None;

    /// <summary>--no-overlap: one whole-buffer Allreduce after backward instead of buckets overlapped with it.</summary>
    public bool NoOverlap { get; init; }

    /// <summary>--cuda-aware-mpi: device gradients go to MPI directly, not staged through host memory (also when
    /// MPIX_Query_cuda_support() says so).</summary>
    public bool CudaAwareMpi { get; init; }

    /// <summary>Size of a gradient bucket of the overlapped exchange, in MB (2^20 bytes); null: DDP's 25.</summary>
    public double? BucketMegabytes { get; init; }

    public double EffectiveBucketMegabytes => BucketMegabytes ?? BucketPlan.DefaultMegabytes;

    // ---- --algo layerwise ----

    /// <summary>The layer-wise plan: a plan file, "data", "model" or "auto" (Layerwise.LayerwiseEngine); null: "data".</summary>
    public string? Plan { get; init; }

    // ---- --algo pipeline ----

    /// <summary>S, pipeline stages (--stages / --pipeline); null: the world size over the replicas.</summary>
    public int? Stages { get; init; }

    /// <summary>D, data-parallel replicas of each stage (--data-parallel); null: the world size over the stages.</summary>
    public int? Replicas { get; init; }

    /// <summary>M, micro-batches per mini-batch; each replica's share B / D is cut into M equal micro-batches.</summary>
    public int? MicroBatches { get; init; }

    public ScheduleKind? Schedule { get; init; }

    /// <summary>Layers per stage, "3,2,2" (torchgpipe's balance); null: partitioned automatically.</summary>
    public string? Balance { get; init; }

    /// <summary>Cost of a layer for the automatic partition: measured forward + backward time, or parameter count.</summary>
    public PartitionCost? PartitionBy { get; init; }

    /// <summary>Chrome trace of the run (one row per rank), written by rank 0.</summary>
    public string? TracePath { get; init; }

    /// <summary>The averaged flat gradient of the first mini-batch (at the initial parameters), written by rank 0.</summary>
    public string? FirstGradientsPath { get; init; }

    // ---- --algo dasgd ----

    /// <summary>--delay: the staleness the master injects (<see cref="Async.DelaySchedule"/>); null: none.</summary>
    public string? Delay { get; init; }

    /// <summary>--step-schedule: alpha_n (<see cref="Async.StepSchedule"/>); null: the default for the delay's growth.</summary>
    public string? StepSchedule { get; init; }

    /// <summary>--arrival fixed: the master takes the workers' gradients in turn (1, 2, ..., 1, 2, ...), the
    /// deterministic mode; any (default): whichever arrives first.</summary>
    public bool FixedArrival { get; init; }

    /// <summary>--delay-histogram: the measured delays' histogram as JSON here and as SVG beside it (.svg).</summary>
    public string? DelayHistogramPath { get; init; }

    /// <summary>--slow-workers K:FACTOR (psgd, dasgd): worker K computes FACTOR times slower (<see cref="Training.SlowWorkers"/>).</summary>
    public string? SlowWorkers { get; init; }

    public int EffectiveMicroBatches => MicroBatches ?? 4;

    public ScheduleKind EffectiveSchedule => Schedule ?? ScheduleKind.OneFOneB;

    public PartitionCost EffectivePartitionBy => PartitionBy ?? PartitionCost.Time;

    /// <summary>
    /// The pipeline x data-parallel grid for a world of <paramref name="worldSize"/> ranks: (S, D) with S * D = world
    /// size; whichever of --stages and --data-parallel is missing follows from the other (both missing: S = world, D = 1).
    /// </summary>
    public (int Stages, int Replicas) GridShape(int worldSize)
    {
        TrainFlags.RequireAtLeast(TrainFlags.Stages, Stages);
        TrainFlags.RequireAtLeast(TrainFlags.Replicas, Replicas);

        var stages = Stages ?? (Replicas is int d ? worldSize / d : worldSize);
        var replicas = Replicas ?? Math.Max(1, worldSize / Math.Max(1, stages));
        if (stages < 1 || (long)stages * replicas != worldSize)
        {
            var given = (Stages, Replicas) switch
            {
                (int s, int r) => $"--stages {s} x --data-parallel {r} = {(long)s * r} ranks",
                (int s, null) => $"--stages {s} does not divide the world size",
                _ => $"--data-parallel {Replicas} does not divide the world size",
            };
            throw new InputException($"the pipeline grid needs S x D = world size, but the job has {worldSize} ranks and {given}; " +
                "start the job with S * D ranks (mpiexec -n S*D) or change --stages / --data-parallel");
        }

        return (stages, replicas);
    }

    public DataSplit EffectiveSplit => Split ?? AlgorithmRegistry.Find(Algorithm).DefaultSplit;

    /// <summary>
    /// Checks the options against the world size: the common ones here, then the algorithm's own and the options that
    /// belong to other algorithms (<see cref="AlgorithmRegistry"/>). Every rank sees the same, so rank 0 alone reports.
    /// </summary>
    public void Validate(int workers)
    {
        var algorithm = AlgorithmRegistry.Find(Algorithm);
        TrainFlags.RequireAtLeast(TrainFlags.Epochs, Epochs);
        TrainFlags.RequireAtLeast(TrainFlags.Batch, Batch);
        AlgorithmRegistry.RejectForeignOptions(this);
        algorithm.Validate(this, workers);
        // The optimizers run in float32: a value beyond float's range would become infinite at the first step.
        if (!(LearningRate > 0 && LearningRate <= float.MaxValue))
        {
            throw new InputException($"--lr must be a positive number at most {float.MaxValue:G9} (float32's largest; got {LearningRate})");
        }

        if (!(Momentum >= 0 && Momentum < 1))
        {
            throw new InputException($"--momentum must be in [0, 1) (got {Momentum})");
        }

        if (!(WeightDecay >= 0 && WeightDecay <= float.MaxValue))
        {
            throw new InputException($"--weight-decay must be a number >= 0 (got {WeightDecay})");
        }

        TrainFlags.RequireAtLeast(TrainFlags.Threads, Threads);

        TrainFlags.RequireAtLeast(TrainFlags.TrainSamples, TrainSamples);
        TrainFlags.RequireAtLeast(TrainFlags.TestSamples, TestSamples);
        TrainFlags.RequireAtLeast(TrainFlags.MaxSteps, MaxSteps);
        TrainFlags.RequireAtLeast(TrainFlags.CurveEvery, CurveEvery);
        TrainFlags.RequireAtLeast(TrainFlags.TrainLossEvery, TrainLossEvery);
        TrainFlags.RequireAtLeast("the training-loss sample count", TrainLossSamples);
        TrainFlags.RequireAtLeast(TrainFlags.MaxSkippedSteps, SkippedStepsLimit, 0);
        if (SkippedStepsLimit is not null && OnNonFinite != NonFinitePolicy.SkipStep)
        {
            throw new InputException($"{TrainFlags.MaxSkippedSteps} applies with {TrainFlags.OnNonFinite} skip-step only");
        }

        if (Device is not ("cpu" or "auto" or "cuda") && !(Device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(Device.AsSpan(5), out var index) && index >= 0))
        {
            throw new InputException($"--device must be cpu, cuda, cuda:N or auto (got '{Device}')");
        }

        ValidateCheckpoints();
        ExchangeRegistry.Find(Exchange);
        CompressorRegistry.Validate(Compress);
        BucketPlan.CapacityBytes(EffectiveBucketMegabytes, TrainFlags.BucketMegabytes);
        DataSetRegistry.Validate(DataSet, DataDirectory);

        // Up front, on every rank: an unknown model or a model file with a mistake stops the job before the data loads.
        MpiPipeline.Torch.ModelZoo.CheckName(Model);
    }

    private void ValidateCheckpoints()
    {
        if (CheckpointDirectory is null && (CheckpointEvery is not null || CheckpointKeep is not null))
        {
            throw new InputException($"{(CheckpointEvery is not null ? TrainFlags.CheckpointEvery : TrainFlags.CheckpointKeep)} applies with {TrainFlags.Checkpoint} DIR only");
        }

        _ = EffectiveCheckpointEvery;
        TrainFlags.RequireAtLeast(TrainFlags.CheckpointKeep, CheckpointKeep);
        if ((CheckpointDirectory is not null || ResumePath is not null) && FailRank is not null)
        {
            throw new InputException($"{(CheckpointDirectory is not null ? TrainFlags.Checkpoint : TrainFlags.Resume)} does not go with {TrainFlags.FailRank}: " +
                "a checkpoint does not record the emulated failure's membership");
        }
    }

    /// <summary>The files a run writes (all on rank 0), with their flags: checked writable before any work.</summary>
    public IEnumerable<(string Flag, string Path)> OutputFiles()
    {
        var checkpoint = CheckpointDirectory is { } folder ? Path.Combine(folder, CheckpointStore.FileName(0)) : null;
        foreach (var (flag, path) in new[] { (TrainFlags.Output, OutputPath), (TrainFlags.SaveParameters, ParametersPath),
                     (TrainFlags.SaveFirstGradients, FirstGradientsPath), (TrainFlags.Trace, TracePath), (TrainFlags.Checkpoint, checkpoint),
                     (TrainFlags.DelayHistogram, DelayHistogramPath),
                     (TrainFlags.DelayHistogram, DelayHistogramPath is null ? null : Path.ChangeExtension(DelayHistogramPath, ".svg")) })
        {
            if (path is not null)
            {
                yield return (flag, path);
            }
        }
    }

    /// <summary>The data-parallel algorithms' shared check: the global batch cut evenly over the workers.</summary>
    public void RequireBatchDivisibleBy(int workers)
    {
        if (Batch % workers != 0)
        {
            throw new InputException($"--batch {Batch} is the global mini-batch and must be divisible by the {workers} workers (each takes batch / workers); try --batch {Batch / workers * workers + workers}");
        }
    }
}
