namespace MpiPipeline.Benchmarks;

/// <summary>Minimum and median of a set of timings.</summary>
internal static class SampleStatistics
{
    public static double Min(ReadOnlySpan<double> samples)
    {
        RequireSome(samples);
        var min = samples[0];
        foreach (var s in samples)
        {
            min = Math.Min(min, s);
        }

        return min;
    }

    /// <summary>The middle value; for an even count, the mean of the two middle values.</summary>
    public static double Median(ReadOnlySpan<double> samples)
    {
        RequireSome(samples);
        var sorted = samples.ToArray();
        Array.Sort(sorted);
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static void RequireSome(ReadOnlySpan<double> samples)
    {
        if (samples.IsEmpty)
        {
            throw new ArgumentException("no samples", nameof(samples));
        }

        foreach (var s in samples)
        {
            if (double.IsNaN(s))
            {
                throw new ArgumentException("a sample is NaN", nameof(samples));
            }
        }
    }
}
