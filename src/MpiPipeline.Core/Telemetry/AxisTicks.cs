using System.Globalization;

namespace MpiPipeline.Telemetry;

/// <summary>An axis: its drawn range and the values that get a tick, grid line and label.</summary>
internal sealed record Axis(double Min, double Max, IReadOnlyList<double> Ticks, IReadOnlyList<string> Labels, bool Log);

/// <summary>
/// Round tick values for plot axes. Linear axes use steps of 1, 2, 2.5 or 5 times a power of ten (Heckbert's "nice
/// numbers", Graphics Gems 1990) and extend to whole steps; logarithmic axes use 1-2-5 within each decade, or whole
/// decades when the range spans many.
/// </summary>
internal static class AxisTicks
{
    private static readonly double[] NiceSteps = [1, 2, 2.5, 5, 10];

    /// <summary>A linear axis covering [min, max] with about <paramref name="targetTicks"/> round ticks.</summary>
    public static Axis Linear(double min, double max, int targetTicks = 6)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max) || min > max)
        {
            (min, max) = (0, 1);
        }

        if (min == max)
        {
            var pad = min == 0 ? 1 : Math.Abs(min) * 0.1;
            (min, max) = (min - pad, max + pad);
        }

        var step = NiceStep((max - min) / Math.Max(1, targetTicks - 1));
        var first = Math.Floor(min / step + 1e-9);
        var last = Math.Ceiling(max / step - 1e-9);
        var ticks = new List<double>();
        for (var k = first; k <= last; k++)
        {
            var tick = Math.Round(k * step, 12);
            ticks.Add(tick == 0 ? 0 : tick); // never "-0"
        }

        return new Axis(ticks[0], ticks[^1], ticks, FormatLinear(ticks, step), Log: false);
    }

    /// <summary>A base-10 logarithmic axis covering [min, max], both positive.</summary>
    public static Axis Log10(double min, double max)
    {
        if (!(min > 0) || !(max > 0) || !double.IsFinite(min) || !double.IsFinite(max) || min > max)
        {
            (min, max) = (1, 10);
        }

        var lowDecade = (int)Math.Floor(Math.Log10(min) + 1e-9);
        var highDecade = (int)Math.Ceiling(Math.Log10(max) - 1e-9);
        if (highDecade == lowDecade)
        {
            highDecade++;
        }

        var decades = highDecade - lowDecade;
        var candidates = new List<double>();
        if (decades <= 3)
        {
            // 1-2-5 ticks; the axis starts at the last one at or below min and ends at the first at or above max.
            for (var decade = lowDecade; decade <= highDecade; decade++)
            {
                foreach (var mantissa in (double[])[1, 2, 5])
                {
                    candidates.Add(mantissa * Math.Pow(10, decade));
                }
            }

            var start = candidates.FindLastIndex(t => t <= min * (1 + 1e-9));
            var end = candidates.FindIndex(t => t >= max * (1 - 1e-9));
            candidates = candidates.GetRange(start, end - start + 1);
        }
        else
        {
            var stride = (int)Math.Ceiling(decades / 6.0);
            lowDecade = (int)Math.Floor(lowDecade / (double)stride) * stride;
            for (var decade = lowDecade; decade < highDecade + stride; decade += stride)
            {
                candidates.Add(Math.Pow(10, decade));
            }
        }

        var labels = candidates.Select(t => t.ToString("G4", CultureInfo.InvariantCulture)).ToList();
        return new Axis(candidates[0], candidates[^1], candidates, labels, Log: true);
    }

    /// <summary>The smallest step of the form {1, 2, 2.5, 5} x 10^k at least <paramref name="rough"/>.</summary>
    public static double NiceStep(double rough)
    {
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        foreach (var nice in NiceSteps)
        {
            if (nice * magnitude >= rough * (1 - 1e-9))
            {
                return nice * magnitude;
            }
        }

        return 10 * magnitude;
    }

    /// <summary>Labels with as many decimals as the step needs; large values as 150k, 2.5M, 1.2G.</summary>
    private static List<string> FormatLinear(List<double> ticks, double step)
    {
        var largest = ticks.Max(Math.Abs);
        var (scale, suffix) = largest >= 1e9 ? (1e9, "G") : largest >= 1e6 ? (1e6, "M") : largest >= 1e5 ? (1e3, "k") : (1, "");
        var decimals = Decimals(step / scale);
        return ticks.Select(t => (t / scale).ToString("F" + decimals, CultureInfo.InvariantCulture) + suffix).ToList();
    }

    private static int Decimals(double step)
    {
        for (var decimals = 0; decimals < 12; decimals++)
        {
            var scaled = step * Math.Pow(10, decimals);
            if (Math.Abs(scaled - Math.Round(scaled)) < 1e-6 * Math.Max(1, scaled))
            {
                return decimals;
            }
        }

        return 12;
    }
}
