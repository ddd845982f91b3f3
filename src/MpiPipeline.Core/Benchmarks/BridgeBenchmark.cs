using System.Diagnostics;
using System.Globalization;
using MpiPipeline.Data;
using MpiPipeline.DataParallel;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Benchmarks;

/// <summary>
/// One <c>bench bridge</c> run. Step times are per step, from before the batch is gathered to after the optimizer
/// step; <see cref="LossSum"/> and <see cref="CorrectSum"/> are over the timed steps, <see cref="FirstLoss"/> is step
/// 0's; <see cref="OrderFingerprint"/> hashes the sample indices of every step run (warm-up included).
/// </summary>
internal sealed record BridgeBenchmarkResult(
    string Model, int Threads, int Batch, int TimedSteps, double MeanMilliseconds, double MedianMilliseconds,
    double MinMilliseconds, double LossSum, long CorrectSum, double FirstLoss, ulong OrderFingerprint)
{
    /// <summary>Mean time of the sampler and the batch gather (<see cref="StepCounters.DataSeconds"/>) per timed step, in us.</summary>
    public double DataMicroseconds { get; init; }

    /// <summary>Step times (ms) at the 10th, 25th, 50th, 75th and 90th percentile (nearest rank below, as the C++ baseline).</summary>
    public IReadOnlyList<double> PercentileMilliseconds { get; init; } = [];

    /// <summary>The column names of <see cref="RawLine"/>; bench/bridge/bridge_bench.cpp prints the same.</summary>
    public const string RawHeader = "model threads batch steps mean_ms median_ms min_ms loss_sum correct_sum first_loss order";

    /// <summary>One line in the C++ baseline's format (printf "%.4f", "%.10f", "%.8f", "%016x"), so the same doubles give the same text.</summary>
    public string RawLine => string.Join(' ',
        Model,
        Threads.ToString(CultureInfo.InvariantCulture),
        Batch.ToString(CultureInfo.InvariantCulture),
        TimedSteps.ToString(CultureInfo.InvariantCulture),
        MeanMilliseconds.ToString("F4", CultureInfo.InvariantCulture),
        MedianMilliseconds.ToString("F4", CultureInfo.InvariantCulture),
        MinMilliseconds.ToString("F4", CultureInfo.InvariantCulture),
        LossSum.ToString("F10", CultureInfo.InvariantCulture),
        CorrectSum.ToString(CultureInfo.InvariantCulture),
        FirstLoss.ToString("F8", CultureInfo.InvariantCulture),
        OrderFingerprint.ToString("x16", CultureInfo.InvariantCulture));
}

/// <summary>
/// The bridge's speed on the project's real path, for comparison with the pure C++ loop of bench/bridge: a
/// single-rank <see cref="Worker"/> (the one `train --algo single` builds) runs <see cref="Worker.ComputeGradient"/>
/// (sampler, batch gather, seed, zero gradients, <see cref="Stage.ForwardLossBackward"/>) and
/// <see cref="Worker.OptimizerStep"/> (<see cref="Optimizer.Step"/>), and each step is timed around both.
/// </summary>
internal static class BridgeBenchmark
{
    /// <summary>FNV-1a (64 bit) offset basis and prime: the order fingerprint, computed the same way in C++.</summary>
    private const ulong FnvOffsetBasis = 0xcbf29ce484222325;
    private const ulong FnvPrime = 0x100000001b3;

    public static BridgeBenchmarkResult Run(Communicator world, BridgeBenchmarkOptions options)
    {
        if (world.Size != 1)
        {
            throw new InputException($"bench bridge measures one process; the job has {world.Size} ranks (run it without mpiexec, or with -n 1)");
        }

        var problems = options.Problems();
        if (problems.Count > 0)
        {
            throw new InputException(string.Join("; ", problems));
        }

        var trainOptions = options.ToTrainOptions();
        TorchRuntime.Threads = options.Threads;
        var train = DataSetRegistry.Load(options.DataSet, options.DataDirectory, train: true);
        var sampler = new ShuffleSampler(train.Count, options.Seed, options.Batch, worker: 0, workers: 1);
        var fingerprint = OrderFingerprint(new ShuffleSampler(train.Count, options.Seed, options.Batch, worker: 0, workers: 1),
            options.Batch, options.TotalSteps);

        using var worker = new Worker(trainOptions, world, train, sampler);
        var times = new double[options.TimedSteps];
        double lossSum = 0, firstLoss = 0;
        var atWarmup = default(StepCounters);
        long correctSum = 0;
        for (var t = 0; t < options.TotalSteps; t++)
        {
            if (t == options.WarmupSteps)
            {
                atWarmup = worker.Stats;
            }

            var start = Stopwatch.GetTimestamp();
            var result = worker.ComputeGradient(t);
            worker.OptimizerStep();
            var elapsed = Stopwatch.GetElapsedTime(start);
            if (t == 0)
            {
                firstLoss = result.Loss;
            }

            if (t >= options.WarmupSteps)
            {
                times[t - options.WarmupSteps] = elapsed.TotalMilliseconds;
                lossSum += result.Loss;
                correctSum += result.Correct;
            }
        }

        return new BridgeBenchmarkResult(options.Model, TorchRuntime.Threads, options.Batch, options.TimedSteps,
            times.Average(), SampleStatistics.Median(times), SampleStatistics.Min(times), lossSum, correctSum, firstLoss,
            fingerprint)
        {
            DataMicroseconds = (worker.Stats - atWarmup).DataSeconds * 1e6 / options.TimedSteps,
            PercentileMilliseconds = Percentiles(times, [0.1, 0.25, 0.5, 0.75, 0.9]),
        };
    }

    /// <summary>sorted[(int)(p * (n - 1))] for each p: the C++ baseline's percentile, so the two print comparable values.</summary>
    internal static double[] Percentiles(ReadOnlySpan<double> samples, ReadOnlySpan<double> fractions)
    {
        var sorted = samples.ToArray();
        Array.Sort(sorted);
        var result = new double[fractions.Length];
        for (var i = 0; i < fractions.Length; i++)
        {
            result[i] = sorted[(int)(fractions[i] * (sorted.Length - 1))];
        }

        return result;
    }

    /// <summary>FNV-1a over the sample indices (each as a 64-bit value) the sampler gives for steps 0..steps-1.</summary>
    internal static ulong OrderFingerprint(IBatchSampler sampler, int batch, int steps)
    {
        var indices = new int[batch];
        var hash = FnvOffsetBasis;
        for (var t = 0; t < steps; t++)
        {
            sampler.Indices(t, indices);
            foreach (var index in indices)
            {
                hash = (hash ^ (ulong)index) * FnvPrime;
            }
        }

        return hash;
    }
}
