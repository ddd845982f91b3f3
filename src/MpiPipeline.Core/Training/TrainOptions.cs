using MpiPipeline.Mpi;

namespace MpiPipeline.Training;

/// <summary>How each rank's mini-batches are drawn from the training set.</summary>
internal enum DataSplit
{
    /// <summary>One permutation of the whole set per (seed, epoch); rank r takes slice r of each global batch (i.i.d.).</summary>
    Shuffle,

    /// <summary>The set cut into p chunks; worker j holds q of them (j..j+q-1 mod p) and samples only from those.</summary>
    Chunks,
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

    public DataSplit EffectiveSplit => Split ?? (Algorithm == "ri-sgd" ? DataSplit.Chunks : DataSplit.Shuffle);

    public static IReadOnlyList<string> Algorithms { get; } = ["single", "psgd", "local-sgd", "ri-sgd"];

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

        if (Batch % workers != 0)
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
}
