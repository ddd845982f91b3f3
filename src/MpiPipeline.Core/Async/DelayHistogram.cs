using System.Globalization;
using System.Text.Json;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Async;

/// <summary>
/// The measured delays d_n of one DASGD run (how many versions each applied gradient was behind), as JSON (delay ->
/// gradients, with the mean, max and the run's delay and step schedules) and as an SVG bar chart beside it.
/// </summary>
internal static class DelayHistogram
{
    /// <summary>Bars in the plot at most: wider ranges are grouped into equal bins.</summary>
    private const int MaxBars = 40;

    public static void Write(string path, IReadOnlyDictionary<long, long> delays, string delay, string steps, long seed)
    {
        var count = delays.Values.Sum();
        var json = new
        {
            delay,
            stepSchedule = steps,
            seed,
            gradients = count,
            mean = count > 0 ? delays.Sum(p => (double)p.Key * p.Value) / count : 0,
            max = delays.Count > 0 ? delays.Keys.Max() : 0,
            counts = delays.OrderBy(p => p.Key).ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => p.Value),
        };
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
        var (labels, values) = Bins(delays);
        new SvgBarChart($"DASGD measured delays (--delay {delay}, {steps})", "delay d_n (updates applied since the gradient's model)", "gradients", labels)
            .Add("gradients", values).Write(Path.ChangeExtension(path, ".svg"));
    }

    /// <summary>One bar per delay value, or per equal range of them when there are more than <see cref="MaxBars"/>.</summary>
    internal static (List<string> Labels, List<double> Values) Bins(IReadOnlyDictionary<long, long> delays)
    {
        if (delays.Count == 0)
        {
            return (["none"], [0]);
        }

        var max = delays.Keys.Max();
        var width = Math.Max(1, (max + MaxBars) / MaxBars);
        var bars = (int)(max / width) + 1;
        var values = new double[bars];
        foreach (var (d, n) in delays)
        {
            values[d / width] += n;
        }

        var labels = Enumerable.Range(0, bars).Select(b => width == 1 ? b.ToString(CultureInfo.InvariantCulture) : $"{b * width}-{(b * width) + width - 1}").ToList();
        return (labels, [.. values]);
    }
}
