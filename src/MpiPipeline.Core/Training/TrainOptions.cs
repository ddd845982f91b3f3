using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;

namespace MpiPipeline.Training;

/// <summary>How each rank's mini-batches are drawn from the training set.</summary>
internal enum DataSplit
{
    /// <summary>One permutation of the whole set per (seed, epoch); rank r takes slice r of each global batch (i.i.d.).</summary>
    Shuffle,

    /// <summary>The set cut into p chunks; worker j holds q of them (j..j+q-1 mod p) and samples only from those.</summary>
    Chunks,
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

/// <summary>Everything one training run needs; validated once, identically on every rank.</summary>
internal sealed record TrainOptions
{
    public string Algorithm { get; init; } = "psgd";
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
    public string? DataDirectory { get; init; }

    /// <summary>Use only the first N training / test samples (quick runs, tests); null = all.</summary>
    public int? TrainSamples { get; init; }

    public int? TestSamples { get; init; }

    /// <summary>Stop after this many steps in total (tests); null = Epochs full epochs.</summary>
    public long? MaxSteps { get; init; }

    /// <summary>Steps between two points of the loss curve in the results.</summary>
    public int CurveEvery { get; init; } = 10;

    public string? OutputPath { get; init; }

    /// <summary>Write the flat parameters at the end to this file (raw little-endian float32; tests compare them).</summary>
    public string? ParametersPath { get; init; }

    public bool EvaluateEachEpoch { get; init; } = true;

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

    public const int DefaultMicroBatches = 4;

    public int EffectiveMicroBatches => MicroBatches ?? DefaultMicroBatches;

    public ScheduleKind EffectiveSchedule => Schedule ?? ScheduleKind.OneFOneB;

    public PartitionCost EffectivePartitionBy => PartitionBy ?? PartitionCost.Time;

    public bool IsPipeline => Algorithm == "pipeline";

    /// <summary>
    /// The pipeline x data-parallel grid for a world of <paramref name="worldSize"/> ranks: (S, D) with S * D = world
    /// size; whichever of --stages and --data-parallel is missing follows from the other (both missing: S = world, D = 1).
    /// </summary>
    public (int Stages, int Replicas) GridShape(int worldSize)
    {
        static InputException Bad(string message) => new(message);
        if (Stages is < 1)
        {
            throw Bad($"--stages must be >= 1 (got {Stages})");
        }

        if (Replicas is < 1)
        {
            throw Bad($"--data-parallel must be >= 1 (got {Replicas})");
        }

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
            throw Bad($"the pipeline grid needs S x D = world size, but the job has {worldSize} ranks and {given}; " +
                "start the job with S * D ranks (mpiexec -n S*D) or change --stages / --data-parallel");
        }

        return (stages, replicas);
    }

    public DataSplit EffectiveSplit => Split ?? (Algorithm == "ri-sgd" ? DataSplit.Chunks : DataSplit.Shuffle);

    public static IReadOnlyList<string> Algorithms { get; } = ["single", "psgd", "local-sgd", "ri-sgd", "pipeline"];

    /// <summary>Checks the options against the world size; every rank sees the same, so rank 0 alone reports.</summary>
    public void Validate(int workers)
    {
        static InputException Bad(string message) => new(message);
        if (!Algorithms.Contains(Algorithm))
        {
            throw Bad($"unknown --algo '{Algorithm}'; known: {string.Join(", ", Algorithms)}");
        }

        if (Algorithm == "single" && workers != 1)
        {
            throw Bad($"--algo single trains on one rank, but the job has {workers} ranks; use --algo psgd (or run with -n 1)");
        }

        if (Epochs < 1)
        {
            throw Bad($"--epochs must be >= 1 (got {Epochs})");
        }

        if (Batch < 1)
        {
            throw Bad($"--batch must be >= 1 (got {Batch})");
        }

        if (IsPipeline)
        {
            ValidatePipeline(workers);
        }
        else if (Stages is not null || Replicas is not null || MicroBatches is not null || Schedule is not null || Balance is not null
                 || PartitionBy is not null || TracePath is not null)
        {
            throw Bad($"--stages, --data-parallel, --micro-batches, --schedule, --balance, --partition and --trace apply to --algo pipeline only (got --algo {Algorithm})");
        }
        else if (Batch % workers != 0)
        {
            throw Bad($"--batch {Batch} is the global mini-batch and must be divisible by the {workers} workers (each takes batch / workers); try --batch {Batch / workers * workers + workers}");
        }

        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
        {
            throw Bad($"--lr must be a positive number (got {LearningRate})");
        }

        if (Momentum < 0 || Momentum >= 1)
        {
            throw Bad($"--momentum must be in [0, 1) (got {Momentum})");
        }

        if (Tau < 1)
        {
            throw Bad($"--tau must be >= 1 (got {Tau}): tau is the number of local steps between two averagings");
        }

        if (Redundancy < 1 || Redundancy > workers)
        {
            throw Bad($"--redundancy {Redundancy} is out of range: each of the p = {workers} workers holds q chunks out of p, so 1 <= q <= {workers}");
        }

        if (Algorithm != "ri-sgd" && Redundancy != 1)
        {
            throw Bad($"--redundancy applies to --algo ri-sgd only (got --algo {Algorithm})");
        }

        if (Algorithm == "ri-sgd" && Split == DataSplit.Shuffle)
        {
            throw Bad("--algo ri-sgd samples from the chunks each worker holds; --split shuffle does not apply");
        }

        if (Algorithm is "psgd" or "single" && Tau != 1)
        {
            throw Bad($"--tau applies to local-sgd and ri-sgd (psgd averages gradients every step)");
        }

        if (FailRank is not null || FailStep is not null)
        {
            if (Algorithm != "ri-sgd")
            {
                throw Bad("--fail-rank/--fail-step emulate a failed worker in --algo ri-sgd only");
            }

            if (FailRank is null || FailStep is null)
            {
                throw Bad("--fail-rank and --fail-step go together");
            }

            if (FailRank < 1 || FailRank >= workers)
            {
                throw Bad($"--fail-rank {FailRank} is out of range: 1..{workers - 1} (rank 0 reports the results and cannot be the failed one)");
            }

            if (FailStep < 0)
            {
                throw Bad($"--fail-step must be >= 0 (got {FailStep})");
            }
        }

        if (TrainSamples is < 1 || TestSamples is < 1)
        {
            throw Bad("--train-samples and --test-samples must be >= 1");
        }

        if (MaxSteps is < 1)
        {
            throw Bad("--max-steps must be >= 1");
        }

        if (CurveEvery < 1)
        {
            throw Bad("--curve-every must be >= 1");
        }

        if (Device is not ("cpu" or "auto" or "cuda") && !(Device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(Device.AsSpan(5), out var index) && index >= 0))
        {
            throw Bad($"--device must be cpu, cuda, cuda:N or auto (got '{Device}')");
        }
    }

    /// <summary>The pipeline's own checks: the grid, micro-batches that cut each replica's batch evenly, the balance's form.</summary>
    private void ValidatePipeline(int workers)
    {
        static InputException Bad(string message) => new(message);
        var (stages, replicas) = GridShape(workers);
        if (Batch % replicas != 0)
        {
            throw Bad($"--batch {Batch} is the global mini-batch and must be divisible by the D = {replicas} data-parallel replicas; try --batch {(Batch / replicas + 1) * replicas}");
        }

        var m = EffectiveMicroBatches;
        if (m < 1)
        {
            throw Bad($"--micro-batches must be >= 1 (got {m})");
        }

        var perReplica = Batch / replicas;
        if (perReplica % m != 0)
        {
            throw Bad($"--micro-batches {m} does not divide the per-replica batch {perReplica} (--batch {Batch} / D = {replicas}): " +
                $"each mini-batch is cut into M equal micro-batches; try --batch {(perReplica / m + 1) * m * replicas} or --micro-batches that divides {perReplica}");
        }

        if (Balance is { } balance)
        {
            var counts = Partition.ParseBalance(balance);
            if (counts.Length != stages)
            {
                throw Bad($"--balance {balance} gives {counts.Length} stages but the pipeline has S = {stages}: give one layer count per stage");
            }

            if (PartitionBy is not null)
            {
                throw Bad("--balance gives the partition explicitly; --partition chooses the automatic one: use one of them");
            }
        }

        if (Tau != 1 || Redundancy != 1 || Split is not null)
        {
            throw Bad("--tau, --redundancy and --split do not apply to --algo pipeline (it averages gradients every step)");
        }
    }
}
