using System.Globalization;
using System.Text;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Scaling;

/// <summary>
/// The sweep's two CSV files (comma-separated, one header line, invariant culture, times in seconds per step):
/// <c>scaling-runs.csv</c>, one line per run (read back by <c>mpipipe scaling --reuse</c>-style re-analysis and the
/// tests), and <c>scaling.csv</c>, one line per mode and rank count.
/// </summary>
internal static class ScalingCsv
{
    public static IReadOnlyList<string> RunColumns { get; } =
    [
        "mode", "ranks", "repetition", "global_batch", "per_rank_batch", "steps", "timed_steps", "step_s", "compute_s",
        "communication_s", "other_s", "communication_rounds", "payload_bytes", "threads_per_rank", "oversubscribed",
        "throughput_samples_per_s", "communication_share",
    ];

    public static IReadOnlyList<string> PointColumns { get; } =
    [
        "mode", "ranks", "global_batch", "per_rank_batch", "repetitions", "throughput_median", "throughput_min",
        "throughput_max", "spread_percent", "step_s_median", "compute_s_median", "communication_s_median",
        "other_s_median", "communication_share", "speedup", "ideal_speedup", "efficiency", "oversubscribed",
    ];

    public static string ModeName(ScalingMode mode) => mode == ScalingMode.Strong ? "strong" : "weak";

    public static ScalingMode ParseMode(string text) => text switch
    {
        "strong" => ScalingMode.Strong,
        "weak" => ScalingMode.Weak,
        _ => throw new FormatException($"'{text}' is not a scaling mode (strong, weak)"),
    };

    public static string FormatRuns(IEnumerable<ScalingRun> runs)
    {
        var text = new StringBuilder().AppendJoin(',', RunColumns).Append('\n');
        foreach (var r in runs)
        {
            text.AppendJoin(',',
                ModeName(r.Mode), I(r.Ranks), I(r.Repetition), I(r.GlobalBatch), I(r.PerRankBatch), I(r.Steps), I(r.TimedSteps),
                R(r.StepSeconds), R(r.ComputeSeconds), R(r.CommunicationSeconds), R(r.OtherSeconds), I(r.CommunicationRounds),
                I(r.PayloadBytes), I(r.ThreadsPerRank), B(r.Oversubscribed), R(r.Throughput), R(r.CommunicationShare)).Append('\n');
        }

        return text.ToString();
    }

    public static string FormatPoints(IEnumerable<ScalingPoint> points)
    {
        var text = new StringBuilder().AppendJoin(',', PointColumns).Append('\n');
        foreach (var p in points)
        {
            text.AppendJoin(',',
                ModeName(p.Mode), I(p.Ranks), I(p.GlobalBatch), I(p.PerRankBatch), I(p.Repetitions), G(p.ThroughputMedian),
                G(p.ThroughputMin), G(p.ThroughputMax), G(p.SpreadPercent), G(p.StepSecondsMedian), G(p.ComputeSecondsMedian),
                G(p.CommunicationSecondsMedian), G(p.OtherSecondsMedian), G(p.CommunicationShare), G(p.Speedup),
                G(p.IdealSpeedup), G(p.Efficiency), B(p.Oversubscribed)).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>Parses <see cref="FormatRuns"/>'s text; a wrong header or a bad cell is one message naming the line.</summary>
    public static IReadOnlyList<ScalingRun> ParseRuns(string text, string source)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length == 0 || lines[0] != string.Join(',', RunColumns))
        {
            throw new InputException($"{source}: not a scaling runs file (the header must be: {string.Join(',', RunColumns)})");
        }

        var runs = new List<ScalingRun>();
        for (var i = 1; i < lines.Length; i++)
        {
            var cells = lines[i].Split(',');
            if (cells.Length != RunColumns.Count)
            {
                throw new InputException($"{source}:{i + 1}: {cells.Length} cells, expected {RunColumns.Count}");
            }

            try
            {
                runs.Add(new ScalingRun(
                    Mode: ParseMode(cells[0]),
                    Ranks: int.Parse(cells[1], CultureInfo.InvariantCulture),
                    Repetition: int.Parse(cells[2], CultureInfo.InvariantCulture),
                    GlobalBatch: int.Parse(cells[3], CultureInfo.InvariantCulture),
                    Steps: int.Parse(cells[5], CultureInfo.InvariantCulture),
                    TimedSteps: int.Parse(cells[6], CultureInfo.InvariantCulture),
                    StepSeconds: double.Parse(cells[7], CultureInfo.InvariantCulture),
                    ComputeSeconds: double.Parse(cells[8], CultureInfo.InvariantCulture),
                    CommunicationSeconds: double.Parse(cells[9], CultureInfo.InvariantCulture),
                    OtherSeconds: double.Parse(cells[10], CultureInfo.InvariantCulture),
                    CommunicationRounds: long.Parse(cells[11], CultureInfo.InvariantCulture),
                    PayloadBytes: long.Parse(cells[12], CultureInfo.InvariantCulture),
                    ThreadsPerRank: int.Parse(cells[13], CultureInfo.InvariantCulture),
                    Oversubscribed: bool.Parse(cells[14])));
            }
            catch (FormatException ex)
            {
                throw new InputException($"{source}:{i + 1}: {ex.Message}");
            }
        }

        return runs;
    }

    public static void WriteRuns(string path, IEnumerable<ScalingRun> runs) => AtomicFile.WriteAllText(path, FormatRuns(runs));

    public static void WritePoints(string path, IEnumerable<ScalingPoint> points) => AtomicFile.WriteAllText(path, FormatPoints(points));

    private static string I(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string R(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string G(double value) => value.ToString("G6", CultureInfo.InvariantCulture);

    private static string B(bool value) => value ? "true" : "false";
}
