namespace MpiPipeline.Scaling;

/// <summary>
/// One rank count of one mode, over its repetitions: medians and spread, and the scaling figures against the sweep's
/// smallest rank count n0 (the baseline) of the same mode:
///   speedup = throughput(n) / throughput(n0); ideal = n / n0; efficiency = speedup / ideal.
/// Strong scaling (same global batch) makes the speedup the step-time ratio T(n0) / T(n); weak scaling (same batch
/// per rank, n/n0 times the work per step) makes the efficiency T(n0) / T(n).
/// </summary>
/// <param name="SpreadPercent">(max - min) / median of the throughput over the repetitions, in percent.</param>
/// <param name="CommunicationShare">Median over repetitions of communication / step time.</param>
internal sealed record ScalingPoint(
    ScalingMode Mode,
    int Ranks,
    int GlobalBatch,
    int Repetitions,
    double ThroughputMedian,
    double ThroughputMin,
    double ThroughputMax,
    double SpreadPercent,
    double StepSecondsMedian,
    double ComputeSecondsMedian,
    double CommunicationSecondsMedian,
    double OtherSecondsMedian,
    double CommunicationShare,
    double Speedup,
    double IdealSpeedup,
    double Efficiency,
    bool Oversubscribed)
{
    public int PerRankBatch => GlobalBatch / Ranks;

    /// <summary>Groups runs by (mode, ranks) and computes each point's figures; points ordered by mode, then ranks.</summary>
    public static IReadOnlyList<ScalingPoint> Summarize(IEnumerable<ScalingRun> runs)
    {
        var points = new List<ScalingPoint>();
        foreach (var mode in runs.GroupBy(r => r.Mode).OrderBy(g => g.Key))
        {
            var byRanks = mode.GroupBy(r => r.Ranks).OrderBy(g => g.Key).ToList();
            var baseline = byRanks[0];
            var baseThroughput = ScalingMath.Median(baseline.Select(r => r.Throughput));
            foreach (var group in byRanks)
            {
                var list = group.ToList();
                var throughput = list.Select(r => r.Throughput).ToList();
                var median = ScalingMath.Median(throughput);
                var speedup = ScalingMath.Speedup(median, baseThroughput);
                var ideal = ScalingMath.IdealSpeedup(group.Key, baseline.Key);
                var batches = list.Select(r => r.GlobalBatch).Distinct().ToList();
                if (batches.Count != 1)
                {
                    throw new InvalidOperationException($"{mode.Key} scaling at {group.Key} ranks: repetitions with different global batches ({string.Join(", ", batches)})");
                }

                points.Add(new ScalingPoint(
                    Mode: mode.Key,
                    Ranks: group.Key,
                    GlobalBatch: batches[0],
                    Repetitions: list.Count,
                    ThroughputMedian: median,
                    ThroughputMin: throughput.Min(),
                    ThroughputMax: throughput.Max(),
                    SpreadPercent: ScalingMath.SpreadPercent(throughput),
                    StepSecondsMedian: ScalingMath.Median(list.Select(r => r.StepSeconds)),
                    ComputeSecondsMedian: ScalingMath.Median(list.Select(r => r.ComputeSeconds)),
                    CommunicationSecondsMedian: ScalingMath.Median(list.Select(r => r.CommunicationSeconds)),
                    OtherSecondsMedian: ScalingMath.Median(list.Select(r => r.OtherSeconds)),
                    CommunicationShare: ScalingMath.Median(list.Select(r => r.CommunicationShare)),
                    Speedup: speedup,
                    IdealSpeedup: ideal,
                    Efficiency: ScalingMath.Efficiency(speedup, ideal),
                    Oversubscribed: list.Any(r => r.Oversubscribed)));
            }
        }

        return points;
    }
}

/// <summary>The arithmetic of scaling tables, apart so that it is tested on its own.</summary>
internal static class ScalingMath
{
    /// <summary>The middle value; for an even count the mean of the two middle values.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.ToArray();
        if (sorted.Length == 0)
        {
            throw new ArgumentException("no values", nameof(values));
        }

        Array.Sort(sorted);
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>(max - min) / median, in percent; 0 for a single value.</summary>
    public static double SpreadPercent(IReadOnlyCollection<double> values)
    {
        var median = Median(values);
        return median == 0 ? 0 : 100 * (values.Max() - values.Min()) / median;
    }

    /// <summary>throughput(n) / throughput(n0).</summary>
    public static double Speedup(double throughput, double baselineThroughput) => throughput / baselineThroughput;

    /// <summary>n / n0: what the speedup would be if nothing but the work were shared.</summary>
    public static double IdealSpeedup(int ranks, int baselineRanks) => (double)ranks / baselineRanks;

    public static double Efficiency(double speedup, double idealSpeedup) => speedup / idealSpeedup;

    /// <summary>Whether <paramref name="ranks"/> x <paramref name="threadsPerRank"/> threads exceed <paramref name="cores"/>.</summary>
    public static bool Oversubscribed(int ranks, int threadsPerRank, int cores) => (long)ranks * threadsPerRank > cores;
}
