namespace MpiPipeline.Benchmarks;

/// <summary>
/// How many operations one message size gets (OSU style: many for small messages, few for large): untimed warm-up
/// operations, then <see cref="Samples"/> timed batches of <see cref="OpsPerSample"/> operations each. The C baseline
/// (bench/mpi/mpi_bench.c) computes the same schedule; keep the two in step.
/// </summary>
internal sealed record IterationSchedule(int WarmupOps, int OpsPerSample, int Samples)
{
    /// <summary>A batch moves about this many bytes at scale 1 ...</summary>
    public const long BytesPerSample = 4L << 20;

    /// <summary>... but holds no more than this many operations.</summary>
    public const int MaxOpsPerSample = 1000;

    public const int DefaultSamples = 21;

    /// <summary>
    /// ops per sample = max(1, floor(scale * min(1000, 4 MiB / size))); warm-up = max(1, ops / 10) per size.
    /// </summary>
    public static IterationSchedule For(long sizeBytes, double scale, int samples = DefaultSamples)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sizeBytes);
        if (!(scale > 0) || double.IsInfinity(scale))
        {
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "the iteration scale must be a positive number");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(samples);
        var unscaled = Math.Min(MaxOpsPerSample, BytesPerSample / sizeBytes);
        var ops = (int)Math.Max(1, Math.Min(int.MaxValue / 2, Math.Floor(scale * unscaled)));
        return new IterationSchedule(Math.Max(1, ops / 10), ops, samples);
    }

    /// <summary>
    /// Before the first size of each operation the loop runs for at least this long (rank 0's clock, broadcast), so the
    /// .NET runtime has compiled the loop and the binding's calls fully before anything is timed. The C baseline
    /// warms up the same way.
    /// </summary>
    public const double FirstWarmupSeconds = 0.5;

    public int TotalOps => WarmupOps + OpsPerSample * Samples;
}
