using System.Globalization;
using System.Text;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Scaling;

/// <summary>
/// The sweep's two CSV files (comma-separated, one header line, invariant culture, times in seconds per step):
/// <c>scaling-runs.csv</c>, one line per run, and <c>scaling.csv</c>, one line per mode and rank count. The last column,
/// <c>network</c>, says what the jobs' messages crossed: <see cref="NativeNetwork"/> (the MPI's own transports: shared
/// memory on one machine) or an emulated link (<see cref="EmulatedNetwork.Label"/>, e.g. emulated:1gbit, one link all
/// ranks share).
/// </summary>
internal static class ScalingCsv
{
    public static IReadOnlyList<string> RunColumns { get; } =
    [
        "mode", "ranks", "repetition", "global_batch", "per_rank_batch", "steps", "timed_steps", "step_s", "compute_s",
        "communication_s", "other_s", "communication_rounds", "payload_bytes", "threads_per_rank", "oversubscribed",
        "throughput_samples_per_s", "communication_share", "network",
    ];

    public static IReadOnlyList<string> PointColumns { get; } =
    [
        "mode", "ranks", "global_batch", "per_rank_batch", "repetitions", "throughput_median", "throughput_min",
        "throughput_max", "spread_percent", "step_s_median", "compute_s_median", "communication_s_median",
        "other_s_median", "communication_share", "speedup", "ideal_speedup", "efficiency", "oversubscribed", "network",
    ];

    /// <summary>The network column without emulation.</summary>
    public const string NativeNetwork = "native";

    public static string ModeName(ScalingMode mode) => mode == ScalingMode.Strong ? "strong" : "weak";

    public static string FormatRuns(IEnumerable<ScalingRun> runs, string network = NativeNetwork)
    {
        var text = new StringBuilder().AppendJoin(',', RunColumns).Append('\n');
        foreach (var r in runs)
        {
            text.AppendJoin(',',
                ModeName(r.Mode), I(r.Ranks), I(r.Repetition), I(r.GlobalBatch), I(r.PerRankBatch), I(r.Steps), I(r.TimedSteps),
                R(r.StepSeconds), R(r.ComputeSeconds), R(r.CommunicationSeconds), R(r.OtherSeconds), I(r.CommunicationRounds),
                I(r.PayloadBytes), I(r.ThreadsPerRank), B(r.Oversubscribed), R(r.Throughput), R(r.CommunicationShare), network).Append('\n');
        }

        return text.ToString();
    }

    public static string FormatPoints(IEnumerable<ScalingPoint> points, string network = NativeNetwork)
    {
        var text = new StringBuilder().AppendJoin(',', PointColumns).Append('\n');
        foreach (var p in points)
        {
            text.AppendJoin(',',
                ModeName(p.Mode), I(p.Ranks), I(p.GlobalBatch), I(p.PerRankBatch), I(p.Repetitions), G(p.ThroughputMedian),
                G(p.ThroughputMin), G(p.ThroughputMax), G(p.SpreadPercent), G(p.StepSecondsMedian), G(p.ComputeSecondsMedian),
                G(p.CommunicationSecondsMedian), G(p.OtherSecondsMedian), G(p.CommunicationShare), G(p.Speedup),
                G(p.IdealSpeedup), G(p.Efficiency), B(p.Oversubscribed), network).Append('\n');
        }

        return text.ToString();
    }

    public static void WriteRuns(string path, IEnumerable<ScalingRun> runs, string network) => AtomicFile.WriteAllText(path, FormatRuns(runs, network));

    public static void WritePoints(string path, IEnumerable<ScalingPoint> points, string network) => AtomicFile.WriteAllText(path, FormatPoints(points, network));

    private static string I(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string R(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string G(double value) => value.ToString("G6", CultureInfo.InvariantCulture);

    private static string B(bool value) => value ? "true" : "false";
}
