using System.Globalization;

namespace MpiPipeline.Benchmarks;

/// <summary>One operation at one message size: time per operation over the samples (slowest rank per sample).</summary>
internal sealed record MpiBenchmarkResult(
    MpiBenchmarkOp Op,
    long SizeBytes,
    int WarmupOps,
    int OpsPerSample,
    int Samples,
    double MinMicroseconds,
    double MedianMicroseconds)
{
    /// <summary>MB/s (10^6 bytes per second) at the median time: bytes per microsecond.</summary>
    public double MedianBandwidthMBps => SizeBytes / MedianMicroseconds;

    /// <summary>MB/s at the best (minimum) time.</summary>
    public double PeakBandwidthMBps => SizeBytes / MinMicroseconds;

    /// <summary>
    /// The machine-readable line the C baseline prints too: <c>op size_bytes min_us median_us</c>, invariant culture,
    /// three decimals.
    /// </summary>
    public string RawLine => string.Create(CultureInfo.InvariantCulture, $"{Op.Name()} {SizeBytes} {MinMicroseconds:F3} {MedianMicroseconds:F3}");

    /// <summary>The header comment of raw output, shared with the C baseline.</summary>
    public const string RawHeader = "# op size_bytes min_us median_us";
}
