using System.Globalization;
using MpiPipeline.Data;

namespace MpiPipeline.Async;

/// <summary>
/// --delay: the staleness DASGD's master injects on top of the real one. After its n-th update the master answers a
/// worker's gradient with the model x_{s} of version s = max(0, n - e(n)), e(n) this schedule's extra delay, so the
/// worker's next gradient is computed e(n) versions further in the past than asynchrony alone makes it: with the real
/// delay r (about workers - 1) the master applies it at d_n = n - s(n) ~ e(n) + r, which reaches the paper's regime
/// d_n = O(n^P) (Zhou et al. 2018, arXiv 2107.02919: delays growing polynomially in n). The schedule is a function of
/// (seed, n) only, so a run replays it exactly.
/// </summary>
internal sealed class DelaySchedule
{
    public const string Flag = "--delay";
    public const string Help = "none | const:D | poly:C,P (e(n) = floor(C n^P)) | random:M (uniform in 0..M, seeded)";

    private readonly Func<long, long> extra;

    private DelaySchedule(string text, Func<long, long> extra, double growth)
    {
        Text = text;
        this.extra = extra;
        Growth = growth;
    }

    public string Text { get; }

    /// <summary>P, the polynomial growth rate of the delays (0 for bounded ones): the step-size default follows it.</summary>
    public double Growth { get; }

    /// <summary>e(n) >= 0: the extra versions of staleness of the model served after update n (n from 0: the start).</summary>
    public long Extra(long n) => n <= 0 ? 0 : extra(n);

    /// <summary>s(n) = max(0, n - e(n)): the version served after update n.</summary>
    public long Served(long n) => Math.Max(0, n - Extra(n));

    public static DelaySchedule Parse(string text, long seed)
    {
        var (kind, arguments) = Split(text);
        switch (kind)
        {
            case "none" when arguments.Length == 0:
                return new DelaySchedule("none", _ => 0, 0);
            case "const" when arguments.Length == 1 && long.TryParse(arguments[0], NumberStyles.None, CultureInfo.InvariantCulture, out var d):
                return new DelaySchedule($"const:{d}", _ => d, 0);
            case "poly" when arguments.Length == 2 && Number(arguments[0]) is { } c && c >= 0 && Number(arguments[1]) is { } p && p >= 0 && p <= 4:
                return new DelaySchedule($"poly:{Format(c)},{Format(p)}", n => (long)Math.Floor(c * Math.Pow(n, p)), p);
            case "random" when arguments.Length == 1 && int.TryParse(arguments[0], NumberStyles.None, CultureInfo.InvariantCulture, out var m) && m < int.MaxValue:
                // Uniform over 0..M from (seed, n): the same on every replay of the run.
                return new DelaySchedule($"random:{m}", n => new SplitMix64(Shuffle.Derive(seed, 0x44A5, n)).NextInt(m + 1), 0);
            default:
                throw new InputException($"{Flag} '{text}' is not one of {Help} (D, M: integers >= 0; C >= 0; 0 <= P <= 4)");
        }
    }

    internal static (string Kind, string[] Arguments) Split(string text)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? (text.Trim().ToLowerInvariant(), []) : (text[..colon].Trim().ToLowerInvariant(), text[(colon + 1)..].Split(','));
    }

    internal static double? Number(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value : null;

    internal static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
