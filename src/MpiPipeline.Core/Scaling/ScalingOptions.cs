using MpiPipeline.Algorithms;
using MpiPipeline.Mpi;
using MpiPipeline.Training;

namespace MpiPipeline.Scaling;

/// <summary>Strong scaling keeps the global batch fixed (more ranks, fewer samples each); weak keeps the per-rank batch.</summary>
internal enum ScalingMode
{
    Strong,
    Weak,
}

/// <summary>How the sweep starts each job.</summary>
internal enum LauncherKind
{
    /// <summary>srun inside a Slurm allocation (SLURM_JOB_ID set), mpiexec elsewhere.</summary>
    Auto,
    Mpiexec,
    Srun,
}

/// <summary>The MPI installation the jobs use (launcher and library belong together).</summary>
internal enum MpiFlavor
{
    Mpich,
    OpenMpi,
}

/// <summary>Everything a scaling sweep needs; <see cref="Validate"/> says what is wrong in one message.</summary>
internal sealed record ScalingOptions
{
    public IReadOnlyList<int> Ranks { get; init; } = [1, 2, 4];
    public IReadOnlyList<ScalingMode> Modes { get; init; } = [ScalingMode.Strong, ScalingMode.Weak];
    public int Repetitions { get; init; } = 3;
    public string Algorithm { get; init; } = DataParallel.Psgd.Registration.Name;
    public string Model { get; init; } = "mlp";

    /// <summary>Strong scaling: the global batch at every rank count (must divide by each).</summary>
    public int GlobalBatch { get; init; } = 256;

    /// <summary>Weak scaling: each rank's batch; the global batch is this times the ranks.</summary>
    public int PerRankBatch { get; init; } = 32;

    /// <summary>Training steps per run, of which the first <see cref="WarmupSteps"/> are not timed.</summary>
    public int Steps { get; init; } = 20;

    public int WarmupSteps { get; init; } = 3;
    public int ThreadsPerRank { get; init; } = 1;
    public int Tau { get; init; } = 16;

    /// <summary>Further `mpipipe train` arguments, passed as given (e.g. --device cuda, --lr 0.1).</summary>
    public IReadOnlyList<string> TrainArguments { get; init; } = [];

    public LauncherKind Launcher { get; init; } = LauncherKind.Auto;
    public MpiFlavor Mpi { get; init; } = MpiFlavor.Mpich;

    /// <summary>srun's --mpi plugin; null: pmi2 for MPICH, pmix for Open MPI.</summary>
    public string? SrunMpi { get; init; }

    public string? Hostfile { get; init; }

    /// <summary>Measure Allreduce (every bench rank count) and ping-pong (2 ranks) with `mpipipe bench mpi` for the model.</summary>
    public bool Bench { get; init; } = true;

    /// <summary>Rank counts to benchmark at; null: every sweep rank count >= 2 that does not oversubscribe the cores.</summary>
    public IReadOnlyList<int>? BenchRanks { get; init; }

    /// <summary>Largest benchmark message; null: the gradient size rounded up to a power of two (at least 64 KiB).</summary>
    public long? BenchMaxBytes { get; init; }

    public int BenchSamples { get; init; } = 9;

    /// <summary>Rank counts the model projects to.</summary>
    public IReadOnlyList<int> ProjectRanks { get; init; } = [16, 32, 64, 128, 256, 512, 1024];

    /// <summary>Pipeline projection: stages, micro-batches per mini-batch, activation bytes per sample at a stage boundary.</summary>
    public int PipelineStages { get; init; } = 4;

    public int MicroBatches { get; init; } = 8;
    public long ActivationBytesPerSample { get; init; } = 1024;

    /// <summary>An assumed network (latency s, bandwidth B/s) for a second set of projections; null: only the measured fit.</summary>
    public (double Alpha, double Bandwidth)? AssumedNetwork { get; init; }

    /// <summary>Run every job inside this emulated network (one shaped loopback); null: the machine's own transports.</summary>
    public EmulatedNetwork? Network { get; init; }

    /// <summary>How the jobs' messages share the network: one shared link when emulated, a link per rank otherwise.</summary>
    public LinkTopology Topology => Network is null ? LinkTopology.PerRank : LinkTopology.Shared;

    public string OutputDirectory { get; init; } = "results/scaling";

    /// <summary>Raw runs (JSON, logs, bench JSON); null: OutputDirectory/runs.</summary>
    public string? WorkDirectory { get; init; }

    /// <summary>Reuse a run's results JSON already in the work directory instead of running it again.</summary>
    public bool Reuse { get; init; }

    public TimeSpan RunTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How the table's header names the command that made it.</summary>
    public string? CommandLine { get; init; }

    public string EffectiveWorkDirectory => WorkDirectory ?? Path.Combine(OutputDirectory, "runs");

    /// <summary>Fashion-MNIST's training set: every timed step must fall in the first epoch (no evaluation inside).</summary>
    public const int TrainingSamples = 60000;

    /// <summary>The --dataset the train arguments give (as "--dataset X" or "--dataset=X"); null: none, the default.</summary>
    public string? DataSetArgument()
    {
        for (var i = 0; i < TrainArguments.Count; i++)
        {
            if (TrainArguments[i] == TrainFlags.DataSet && i + 1 < TrainArguments.Count)
            {
                return TrainArguments[i + 1];
            }

            if (TrainArguments[i].StartsWith(TrainFlags.DataSet + "=", StringComparison.Ordinal))
            {
                return TrainArguments[i][(TrainFlags.DataSet.Length + 1)..];
            }
        }

        return null;
    }

    /// <summary>The global batch of a run at <paramref name="ranks"/> ranks.</summary>
    public int GlobalBatchAt(ScalingMode mode, int ranks) => mode == ScalingMode.Strong ? GlobalBatch : PerRankBatch * ranks;

    public void Validate()
    {
        if (Ranks.Count == 0 || Ranks.Any(n => n < 1))
        {
            throw new InputException("--ranks needs one or more rank counts >= 1, e.g. 1,2,4");
        }

        if (Ranks.Distinct().Count() != Ranks.Count)
        {
            throw new InputException($"--ranks names a rank count twice ({Join(Ranks)})");
        }

        if (Modes.Count == 0)
        {
            throw new InputException("--mode needs strong, weak or both");
        }

        TrainFlags.RequireAtLeast("--repetitions", Repetitions);

        if (!AlgorithmRegistry.DataParallelNames.Contains(Algorithm))
        {
            throw new InputException($"--algo {Algorithm} cannot be swept; known: {string.Join(", ", AlgorithmRegistry.DataParallelNames)}");
        }

        if (Modes.Contains(ScalingMode.Strong))
        {
            TrainFlags.RequireAtLeast("--global-batch", GlobalBatch);

            var misfits = Ranks.Where(n => GlobalBatch % n != 0).ToList();
            if (misfits.Count > 0)
            {
                throw new InputException($"strong scaling: --global-batch {GlobalBatch} must be divisible by every rank count; it is not by {Join(misfits)}");
            }
        }

        TrainFlags.RequireAtLeast("--per-rank-batch", PerRankBatch);

        if (Steps < 2 || WarmupSteps < 0 || WarmupSteps >= Steps)
        {
            throw new InputException($"--steps {Steps} and --warmup-steps {WarmupSteps}: need steps >= 2 and 0 <= warmup < steps (the timed steps are steps - warmup)");
        }

        var largestBatch = Modes.Max(mode => Ranks.Max(n => (long)GlobalBatchAt(mode, n)));
        // Fashion-MNIST's size is known here; another data set's is known once a run has loaded it (ScalingRun checks).
        if (DataSetArgument() is null or "fashion-mnist" && Steps * largestBatch > TrainingSamples)
        {
            throw new InputException($"--steps {Steps} x the largest global batch {largestBatch} = {Steps * largestBatch} samples is more than one epoch ({TrainingSamples}): every timed step must be in the first epoch; lower --steps or the batch");
        }

        TrainFlags.RequireAtLeast(TrainFlags.Threads, ThreadsPerRank);
        TrainFlags.RequireAtLeast(TrainFlags.Tau, Tau);

        var reserved = new[] { TrainFlags.Algorithm, TrainFlags.Model, TrainFlags.Batch, TrainFlags.MaxSteps, TrainFlags.Epochs, TrainFlags.Threads,
            TrainFlags.Output, TrainFlags.CurveEvery, TrainFlags.Tau };
        if (TrainArguments.FirstOrDefault(a => reserved.Contains(a.Split('=')[0])) is { } clash)
        {
            throw new InputException($"--train-args must not set {clash.Split('=')[0]}: the sweep sets it (use the scaling option instead)");
        }

        if (BenchRanks is { } benchRanks && benchRanks.Any(n => n < 2))
        {
            throw new InputException("--bench-ranks: Allreduce and ping-pong need rank counts >= 2");
        }

        if (BenchSamples < 1)
        {
            throw new InputException("--bench-samples must be >= 1");
        }

        if (ProjectRanks.Count == 0 || ProjectRanks.Any(n => n < 2))
        {
            throw new InputException("--project needs rank counts >= 2");
        }

        if (PipelineStages < 2 || MicroBatches < 1 || ActivationBytesPerSample < 0)
        {
            throw new InputException("--stages must be >= 2, --micro-batches >= 1 and --activation-bytes >= 0");
        }

        if (ProjectRanks.FirstOrDefault(n => n % PipelineStages != 0) is var odd and > 0)
        {
            throw new InputException($"--project {odd}: the pipeline projection needs rank counts divisible by --stages {PipelineStages}");
        }

        if (AssumedNetwork is { } net && (!(net.Alpha >= 0) || !(net.Bandwidth > 0)))
        {
            throw new InputException("--assume-network needs a latency >= 0 us and a bandwidth > 0 GB/s, e.g. 2,12.5");
        }

        if (Network is not null && (Launcher == LauncherKind.Srun || Hostfile is not null))
        {
            throw new InputException($"--network emulates a network on this one machine (a private network namespace around each mpiexec); it cannot take ranks on other hosts or started by srun: drop {(Hostfile is not null ? "--hostfile" : "--launcher srun")} or --network");
        }

        if (RunTimeout <= TimeSpan.Zero)
        {
            throw new InputException("--timeout must be > 0 seconds");
        }
    }

    private static string Join(IEnumerable<int> values) => string.Join(", ", values);
}
