using System.Globalization;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Smoothing;

/// <summary>Which side of the measurement a bound is on.</summary>
internal enum BoundKind
{
    /// <summary>measured &gt;= bound.</summary>
    Lower,

    /// <summary>measured &lt;= bound.</summary>
    Upper,
}

/// <summary>One check: on <see cref="Problem"/>, <see cref="Method"/> after t time units on a chain of depth Delta.</summary>
internal sealed record BoundsRow(string Problem, string Method, int Depth, long TimeUnits, BoundKind Kind, double Bound, double Measured)
{
    public bool Holds => Kind == BoundKind.Lower ? Measured >= Bound : Measured <= Bound;
}

/// <summary>
/// The supplement's bounds against measured runs on its worst-case functions, per depth Delta and time budget t:
/// <list type="bullet">
/// <item>Eq. 5 - smooth convex: on Eq. 1 built for the horizon (k = k_t, beta = 1), f(theta) - f* of the best iterate
/// within t time units, for GD and AGD (eta = 1/beta) and PPRS (default gamma and K, eta = 1/beta since f^gamma is
/// beta-smooth too);</item>
/// <item>Eq. 3 - non-zero coordinates: on the same GD and AGD runs, and on Eq. 6 (k = k_t, eta = 1/152); not for PPRS,
/// whose perturbed iterates are dense (the bound assumes iterates in the span of the gradients);</item>
/// <item>Eq. 10 - non-smooth convex: on Eq. 8 built for the horizon (L = R = 1), f - f* of the best iterate for the
/// subgradient method (GD with eta = R/(L sqrt(T))), AGD with the same step, and PPRS with its defaults (T the most
/// iterations that fit in t);</item>
/// <item>Eq. 13 - PPRS's upper bound on the same non-smooth run, f(y_T) - f* (one seeded run; the bound is in
/// expectation).</item>
/// </list>
/// </summary>
internal static class BoundsTable
{
    public static readonly IReadOnlyList<int> DefaultDepths = [1, 5, 20];

    public static readonly IReadOnlyList<long> DefaultTimes = [100, 400, 1600];

    public const string SmoothConvex = "smooth convex, Eq. 5";
    public const string NonZero = "non-zero coordinates, Eq. 3";
    public const string NonZeroNonConvex = "non-zero coordinates (Eq. 6 function), Eq. 3";
    public const string NonSmooth = "non-smooth convex, Eq. 10";
    public const string PprsUpper = "PPRS upper bound, Eq. 13";

    public static IReadOnlyList<BoundsRow> Build(IEnumerable<int>? depths = null, IEnumerable<long>? times = null, long seed = 1)
    {
        var rows = new List<BoundsRow>();
        foreach (var depth in depths ?? DefaultDepths)
        {
            foreach (var t in times ?? DefaultTimes)
            {
                rows.AddRange(SmoothRows(depth, t, seed));
                rows.AddRange(NonConvexRows(depth, t));
                rows.AddRange(NonSmoothRows(depth, t, seed));
            }
        }

        return rows;
    }

    /// <summary>The rows as a Markdown table.</summary>
    public static string ToMarkdown(IEnumerable<BoundsRow> rows)
    {
        var table = new MarkdownTable("problem", "method", "Delta", "t", "bound", "measured", "holds");
        foreach (var row in rows)
        {
            var side = row.Kind == BoundKind.Lower ? ">= " : "<= ";
            table.AddRow(row.Problem, row.Method, Text(row.Depth), Text(row.TimeUnits), side + Text(row.Bound), Text(row.Measured), row.Holds ? "yes" : "NO");
        }

        return table.ToString();
    }

    private static IEnumerable<BoundsRow> SmoothRows(int depth, long t, long seed)
    {
        const double beta = 1;
        var f = SmoothConvexWorstCase.ForHorizon(t, depth, beta);
        var radius = f.DistanceToMinimizer;
        var bound = LowerBounds.SmoothConvex(t, depth, beta, radius); // Eq. 5
        var kt = LowerBounds.NonZeroCoordinates(t, depth); // Eq. 3
        var iterations = TimeUnits.IterationsWithin(t, 1, depth);
        var start = new double[f.Dimension];

        var gd = GradientDescent.ForSmooth(beta).Run(f.ToOracle(depth), start, iterations);
        var agd = AcceleratedGradientDescent.ForSmooth(beta).Run(f.ToOracle(depth), start, iterations);
        var pprsIterations = PprsParameters.IterationsWithin(t, f.Dimension, depth);
        var parameters = PprsParameters.Defaults(1, radius, f.Dimension, pprsIterations) with { StepSize = 1 / beta };
        var pprs = new Pprs(parameters, seed).Run(f.ToOracle(depth), start);

        foreach (var (method, trace) in new[] { ("GD", gd), ("AGD", agd), ("PPRS", pprs) })
        {
            yield return new BoundsRow(SmoothConvex, method, depth, t, BoundKind.Lower, bound, BestGapWithin(trace, t, f.MinimumValue));
        }

        foreach (var (method, trace) in new[] { ("GD", gd), ("AGD", agd) })
        {
            yield return new BoundsRow(NonZero, method, depth, t, BoundKind.Upper, kt, trace.AtTime(t).NonZeroCoordinates);
        }
    }

    private static IEnumerable<BoundsRow> NonConvexRows(int depth, long t)
    {
        var kt = LowerBounds.NonZeroCoordinates(t, depth); // Eq. 3
        var f = new NonConvexWorstCase(2 * kt + 1, kt);
        var iterations = TimeUnits.IterationsWithin(t, 1, depth);
        var start = new double[f.Dimension];
        var gd = GradientDescent.WithStepSize(1 / NonConvexWorstCase.GradientLipschitz).Run(f.ToOracle(depth), start, iterations);
        var agd = new AcceleratedGradientDescent(1 / NonConvexWorstCase.GradientLipschitz).Run(f.ToOracle(depth), start, iterations);
        yield return new BoundsRow(NonZeroNonConvex, "GD", depth, t, BoundKind.Upper, kt, gd.AtTime(t).NonZeroCoordinates);
        yield return new BoundsRow(NonZeroNonConvex, "AGD", depth, t, BoundKind.Upper, kt, agd.AtTime(t).NonZeroCoordinates);
    }

    private static IEnumerable<BoundsRow> NonSmoothRows(int depth, long t, long seed)
    {
        const double lipschitz = 1, radius = 1;
        var f = NonSmoothWorstCase.ForHorizon(t, depth, lipschitz, radius);
        var minimum = f.MinimumValue;
        var bound = LowerBounds.NonSmooth(t, depth, lipschitz, radius); // Eq. 10
        var iterations = TimeUnits.IterationsWithin(t, 1, depth);
        var eta = StepSizes.Subgradient(radius, lipschitz, Math.Max(iterations, 1));
        var start = new double[f.Dimension];

        var gd = GradientDescent.WithStepSize(eta).Run(f.ToOracle(depth), start, iterations);
        var agd = new AcceleratedGradientDescent(eta).Run(f.ToOracle(depth), start, iterations);
        var parameters = PprsParameters.Defaults(lipschitz, radius, f.Dimension, PprsParameters.IterationsWithin(t, f.Dimension, depth));
        var pprs = new Pprs(parameters, seed).Run(f.ToOracle(depth), start);

        foreach (var (method, trace) in new[] { ("subgradient (GD)", gd), ("AGD", agd), ("PPRS", pprs) })
        {
            yield return new BoundsRow(NonSmooth, method, depth, t, BoundKind.Lower, bound, BestGapWithin(trace, t, minimum));
        }

        var upper = UpperBounds.Pprs(lipschitz, radius, f.Dimension, parameters.Iterations, parameters.Samples); // Eq. 13
        yield return new BoundsRow(PprsUpper, $"PPRS (T = {parameters.Iterations}, K = {parameters.Samples})", depth, t, BoundKind.Upper, upper, pprs.Final.Value - minimum);
    }

    /// <summary>min over the reported iterates within t time units of f - f*.</summary>
    private static double BestGapWithin(OptimizationTrace trace, long t, double minimum) =>
        trace.Records.Where(r => r.ElapsedTimeUnits <= t).Min(r => r.Value) - minimum;

    private static string Text(double value) => value.ToString("G4", CultureInfo.InvariantCulture);
}
