
namespace MpiPipeline.Async;

/// <summary>
/// --step-schedule: alpha_n, the step of DASGD's n-th update x_n = x_{n-1} - alpha_n g(x_{s(n)}) (n from 1), with
/// alpha_0 = --lr.
/// <list type="bullet">
/// <item>const: alpha_n = alpha_0.</item>
/// <item>poly:q: alpha_n = alpha_0 / n^q.</item>
/// <item>quasilinear: alpha_n proportional to 1 / (m log m log log m), m = n - 1 + e^e (so that log log m >= 1),
/// scaled to alpha_1 = alpha_0: the slowly vanishing "quasilinear" family of Zhou et al. (ICML 2018, abstract:
/// "a judiciously chosen quasilinear step-size sequence").</item>
/// </list>
/// The condition linking q and the delay growth P: the analysis needs sum alpha_n = infinity, sum alpha_n^2 &lt;
/// infinity and the delayed drift sum_n alpha_n sum_{k = n - d_n}^{n-1} alpha_k &lt; infinity (Zhou, Mertikopoulos,
/// Bambos, Glynn, Ye, arXiv 2107.02919, the step-size assumption of its convergence theorems for d_n = O(n^P)). With
/// alpha_n = 1/n^q and d_n ~ C n^P the last term is ~ C n^{P - 2q}: the three hold iff (1 + P)/2 &lt; q &lt;= 1, so P
/// &lt; 1 is the limit for polynomial steps; at P = 1 (d_n ~ C n, C &lt; 1) the quasilinear steps still satisfy it
/// (the window's sum is ~ log(1/(1-C)) / (log n log log n)). The default is the middle of the admissible range, q =
/// (3 + P)/4, and quasilinear from P = 1 on.
/// </summary>
internal sealed class StepSchedule
{
    public const string Flag = "--step-schedule";
    public const string Help = "const | poly:q (alpha_n = lr / n^q) | quasilinear (lr-scaled 1 / (n log n log log n)); default poly:(3+P)/4 for --delay poly:C,P with P < 1, quasilinear for P >= 1";

    private readonly Func<long, double> factor;

    private StepSchedule(string text, Func<long, double> factor)
    {
        Text = text;
        this.factor = factor;
    }

    public string Text { get; }

    /// <summary>alpha_n / alpha_0 for update n >= 1.</summary>
    public double Factor(long n) => factor(Math.Max(1, n));

    /// <summary>The paper-following default for delays growing as n^P.</summary>
    public static string DefaultFor(double growth) => growth >= 1 ? "quasilinear" : $"poly:{DelaySchedule.Format(Math.Round((3 + growth) / 4, 6))}";

    /// <summary>True when (1 + P)/2 &lt; q &lt;= 1 (polynomial steps), or quasilinear with P &lt;= 1: the condition above.</summary>
    public static bool WithinCondition(string text, double growth)
    {
        var (kind, arguments) = DelaySchedule.Split(text);
        return kind switch
        {
            "poly" => DelaySchedule.Number(arguments[0]) is { } q && q > (1 + growth) / 2 && q <= 1,
            "quasilinear" => growth <= 1,
            _ => false,
        };
    }

    public static StepSchedule Parse(string text)
    {
        var (kind, arguments) = DelaySchedule.Split(text);
        switch (kind)
        {
            case "const" when arguments.Length == 0:
                return new StepSchedule("const", _ => 1);
            case "poly" when arguments.Length == 1 && DelaySchedule.Number(arguments[0]) is { } q && q >= 0 && q <= 4:
                return new StepSchedule($"poly:{DelaySchedule.Format(q)}", n => Math.Pow(n, -q));
            case "quasilinear" when arguments.Length == 0:
            {
                static double H(long n)
                {
                    var m = n - 1 + Math.Exp(Math.E);
                    return m * Math.Log(m) * Math.Log(Math.Log(m));
                }

                var first = H(1);
                return new StepSchedule("quasilinear", n => first / H(n));
            }

            default:
                throw new InputException($"{Flag} '{text}' is not one of {Help} (0 <= q <= 4)");
        }
    }
}
