using System.Globalization;
using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Benchmarks;

/// <summary>
/// What one <c>mpipipe bench bridge</c> run does: <see cref="WarmupSteps"/> untimed then <see cref="TimedSteps"/> timed
/// single-rank training steps of <see cref="Model"/> through the bridge, with the training loop's own settings. The
/// C++ baseline (bench/bridge/bridge_bench.cpp) takes the same flags with the same defaults.
/// </summary>
internal sealed record BridgeBenchmarkOptions
{
    public string Model { get; init; } = "mlp";
    public int Threads { get; init; } = 1;
    public int TimedSteps { get; init; } = 300;
    public int WarmupSteps { get; init; } = 20;
    public int Batch { get; init; } = 128;
    public double LearningRate { get; init; } = 0.05;
    public double Momentum { get; init; } = 0.9;
    public long Seed { get; init; } = 1;
    public string? DataDirectory { get; init; }

    /// <summary>--device: cpu or cuda:N (the C++ baseline runs on the CPU only; bench/gpu/check.sh compares a CUDA run
    /// with PyTorch eager instead).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>--dataset: Fashion-MNIST (the C++ baseline's), or synthetic data of the same geometry where the files
    /// are not at hand (a GPU machine).</summary>
    public string DataSet { get; init; } = DataSetRegistry.Default;

    public int TotalSteps => WarmupSteps + TimedSteps;

    /// <summary>Every problem with the values, one message each (empty: valid). Pure; the CLI reports them as usage errors.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        try
        {
            ModelZoo.CheckName(Model);
        }
        catch (InputException ex)
        {
            problems.Add($"--model: {ex.Message}");
        }

        if (Threads < 1)
        {
            problems.Add($"--threads must be at least 1 (got {Threads})");
        }

        if (TimedSteps < 1)
        {
            problems.Add($"--steps must be at least 1 (got {TimedSteps})");
        }

        if (WarmupSteps < 0)
        {
            problems.Add($"--warmup must not be negative (got {WarmupSteps})");
        }

        if (Batch < 1 || Batch > FashionMnist.TrainCount)
        {
            problems.Add($"--batch must be from 1 to {FashionMnist.TrainCount} (got {Batch})");
        }

        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
        {
            problems.Add($"--lr must be a positive number (got {LearningRate.ToString(CultureInfo.InvariantCulture)})");
        }

        if (!(Momentum >= 0 && Momentum < 1))
        {
            problems.Add($"--momentum must be in [0, 1) (got {Momentum.ToString(CultureInfo.InvariantCulture)})");
        }

        if (Seed < 0)
        {
            problems.Add($"--seed must not be negative (got {Seed})");
        }

        if (Device != "cpu" && !Device.StartsWith("cuda:", StringComparison.Ordinal))
        {
            problems.Add($"--device must be cpu or cuda:N (got '{Device}')");
        }

        try
        {
            DataSetRegistry.Validate(DataSet, DataDirectory);
        }
        catch (InputException ex)
        {
            problems.Add($"--dataset: {ex.Message}");
        }

        return problems;
    }

    /// <summary>The training options of the same run: what <see cref="Worker"/> is built from in `mpipipe train --algo single`.</summary>
    public TrainOptions ToTrainOptions() => new()
    {
        Algorithm = DataParallel.Psgd.Single.Name,
        Model = Model,
        Epochs = 1,
        Batch = Batch,
        LearningRate = LearningRate,
        Optimizer = OptimizerKind.Sgd,
        Momentum = Momentum,
        Seed = Seed,
        Threads = Threads,
        DataDirectory = DataDirectory,
        DataSet = DataSet,
        Device = Device,
        EvaluateEachEpoch = false,
    };
}
