using System.Text.Json;

namespace MpiPipeline.Benchmarks;

/// <summary>The JSON document of <c>mpipipe bench mpi --json</c>: what ran where, and one entry per operation and size.</summary>
internal sealed record MpiBenchmarkReport(
    string Benchmark,
    string Library,
    string Abi,
    int WorldSize,
    double IterationScale,
    int Samples,
    double FirstWarmupSeconds,
    IReadOnlyList<string> Notes,
    IReadOnlyList<MpiBenchmarkReport.Entry> Results)
{
    internal sealed record Entry(
        string Op, long SizeBytes, int WarmupOps, int OpsPerSample, int Samples,
        double MinMicroseconds, double MedianMicroseconds, double MedianBandwidthMBps, double PeakBandwidthMBps);

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static MpiBenchmarkReport Create(
        string library, string abi, int worldSize, MpiBenchmarkOptions options, IEnumerable<string> notes, IEnumerable<MpiBenchmarkResult> results) =>
        new("mpi", library, abi, worldSize, options.IterationScale, options.Samples, options.FirstWarmupSeconds, [.. notes],
            [.. results.Select(r => new Entry(r.Op.Name(), r.SizeBytes, r.WarmupOps, r.OpsPerSample, r.Samples,
                r.MinMicroseconds, r.MedianMicroseconds, r.MedianBandwidthMBps, r.PeakBandwidthMBps))]);

    public string ToJson() => JsonSerializer.Serialize(this, Indented);
}
