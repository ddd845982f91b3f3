using System.Globalization;
using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>
/// The overlapped, bucketed gradient Allreduce wired to a stage: the default wherever gradients are averaged (PSGD,
/// the pipeline's replicas) unless <c>--no-overlap</c>. CPU stages only: libtorch runs a CUDA backward on its own
/// device threads, where the hook could not start MPI calls in order with the main thread's, so a CUDA stage's gradients
/// are averaged after backward (<see cref="GradientStaging"/>: bucket copies overlapped with the buckets' Allreduces).
/// With <c>--compress</c> the buckets go through the compressor (encoded as backward finishes them, gathered by
/// MPI_Iallgather(v)); <c>--no-overlap</c> keeps the whole-buffer <see cref="CompressedExchange"/> after backward.
/// </summary>
internal static class GradientOverlap
{
    /// <summary>Owned by the algorithms that average gradients.</summary>
    public static bool Applies(TrainOptions options, Stage stage, Communicator group) =>
        !options.NoOverlap && group.Size > 1 && !stage.SeparateHostMirrors && options.Exchange == AllreduceExchange.ExchangeName;

    /// <summary><c>MPIPIPE_OVERLAP_PROGRESS=callbacks</c> turns the progress thread off (to measure what it brings).</summary>
    public const string ProgressVariable = "MPIPIPE_OVERLAP_PROGRESS";

    /// <summary>A progress thread where MPI allows calls from it (MPI_THREAD_MULTIPLE) and the user has not said
    /// <c>callbacks</c>; <c>thread</c> or unset: the thread.</summary>
    public static bool UseProgressThread(string? setting) => setting switch
    {
        null or "" or "thread" => MpiEnvironment.ThreadMultiple,
        "callbacks" => false,
        _ => throw new InputException($"{ProgressVariable} must be 'thread' or 'callbacks' (got '{setting}')"),
    };

    /// <summary>The exchange, with the stage's gradient-ready hook reporting into it; <paramref name="worldRank"/> seeds
    /// the compressor's draws, if any (with the run's seed).</summary>
    public static OverlappedAllreduceExchange Attach(TrainOptions options, Stage stage, Communicator group, IdleWait? wait, int worldRank)
    {
        var exchange = new OverlappedAllreduceExchange(group, wait, [.. stage.Layout.Select(p => p.Length)],
            BucketPlan.CapacityBytes(options.EffectiveBucketMegabytes, TrainFlags.BucketMegabytes),
            UseProgressThread(Environment.GetEnvironmentVariable(ProgressVariable)),
            CompressorRegistry.Create(options.Compress, new CompressorContext(options.Seed, worldRank)));
        stage.SetGradientHook(parameter => exchange.GradientReady(parameter, stage.Gradients));
        return exchange;
    }

    /// <summary>Before a step's backward calls: <paramref name="backwardCalls"/> of them, the last one leaves the gradients final.</summary>
    public static void BeginStep(OverlappedAllreduceExchange exchange, Stage stage, int backwardCalls)
    {
        exchange.BeginStep();
        stage.ArmGradientHook(backwardCalls);
    }

    /// <summary>The results' options: whether the gradients were overlapped, and the bucket size and count.</summary>
    public static void Describe(IDictionary<string, string> described, OverlappedAllreduceExchange? exchange, TrainOptions options)
    {
        described["overlap"] = (exchange is not null).ToString().ToLowerInvariant();
        described["bucketMb"] = exchange is not null ? options.EffectiveBucketMegabytes.ToString("R", CultureInfo.InvariantCulture) : "";
        described["buckets"] = exchange?.Buckets.Count.ToString(CultureInfo.InvariantCulture) ?? "";
        described["overlapProgress"] = exchange is null ? "" : exchange.ProgressThread ? "thread" : "callbacks";
    }

    /// <summary>One line on the overlap for the report: buckets, and how much of their time in flight backward hid (this rank).</summary>
    public static IReadOnlyList<string> Notes(OverlappedAllreduceExchange? exchange, TrainOptions options)
    {
        if (exchange is null || exchange.Counters.Rounds == 0)
        {
            return [];
        }

        var c = exchange.Counters;
        return [string.Create(CultureInfo.InvariantCulture,
            $"gradient {(exchange.Compressor is null ? "Allreduce" : "exchange")} in {exchange.Buckets.Count} bucket(s) of <= {options.EffectiveBucketMegabytes} MB overlapped with backward: " +
            $"{c.InFlightSeconds:F3} s in flight, {c.ExposedSeconds:F3} s waited after backward ({c.HiddenFraction:P0} hidden, this rank; ") +
            (exchange.ProgressThread ? "progress thread)" : "progress from backward's callbacks only)")];
    }
}
