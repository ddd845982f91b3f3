using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The supplement's lower bounds (section 1) as functions of the time t in time units and the depth Delta. They hold
/// for black-box methods whose iterates stay in the span of the gradients they have seen (GD, AGD, the subgradient
/// method); PPRS's random perturbations leave that span, so Eq. 3 does not constrain it (its iterates are dense after
/// one iteration), and for PPRS the value bounds are checked as measurements, not as theorems.
/// </summary>
internal static class LowerBounds
{
    /// <summary>
    /// k_t, the most coordinates that can be non-zero after t time units (Eq. 3):
    /// <code>k_t &lt;= floor((t - 1)/(Delta - 1)) + 1 &lt;= 2 (t - 1)/Delta + 1   for Delta &gt;= 2,   k_t &lt;= floor(t) for Delta = 1</code>
    /// (0 before the first time unit).
    /// </summary>
    public static int NonZeroCoordinates(double timeUnits, int depth)
    {
        Check(timeUnits, depth);
        if (timeUnits < 1)
        {
            return 0;
        }

        return depth == 1
            ? (int)Math.Floor(timeUnits) // Delta = 1 (supplement line 28)
            : (int)Math.Floor((timeUnits - 1) / (depth - 1)) + 1; // Eq. 3
    }

    /// <summary>The relaxed form of Eq. 3, 2 (t - 1)/Delta + 1, valid for every Delta &gt;= 1 and t &gt;= 1.</summary>
    public static double NonZeroCoordinatesRelaxed(double timeUnits, int depth)
    {
        Check(timeUnits, depth);
        return 2 * (timeUnits - 1) / depth + 1; // Eq. 3, right
    }

    /// <summary>
    /// On the Eq. 1 function with parameter k, a point with at most k_t &lt;= 2k non-zero coordinates (the first ones,
    /// as GD and AGD produce) is at least
    /// <code>-beta/8 (1 - 1/(k_t + 1)) - f* = beta/8 (1/(k_t + 1) - 1/(2k + 2))</code>
    /// above the minimum (Eq. 4 minus Eq. 2); with k = k_t this is beta/(16 (k_t + 1)), the left side of Eq. 5.
    /// </summary>
    public static double SmoothConvexGapOnSupport(int nonZeroCoordinates, int k, double beta)
    {
        if (nonZeroCoordinates < 0 || nonZeroCoordinates > 2 * k)
        {
            throw new ArgumentOutOfRangeException(nameof(nonZeroCoordinates), nonZeroCoordinates, $"Eq. 4 applies to 0 .. 2k = {2 * k} non-zero coordinates");
        }

        return beta / 8 * (1.0 / (nonZeroCoordinates + 1) - 1.0 / (2 * k + 2)); // Eq. 4 - Eq. 2
    }

    /// <summary>
    /// The smooth convex lower bound (Eq. 5): any span method after t &gt;= 1 time units on a chain of depth Delta,
    /// on the Eq. 1 function with k = k_t, is at least
    /// <code>f_G(theta_t) - f_G(theta*) &gt;= beta/(16 (k_t + 1)) &gt;= 3 beta R^2 / (32 (2 (t - 1)/Delta + 2)^2)</code>
    /// above the minimum, R = ||theta_0 - theta*||.
    /// </summary>
    public static double SmoothConvex(double timeUnits, int depth, double beta, double radius)
    {
        Check(timeUnits, depth);
        if (timeUnits < 1)
        {
            throw new InputException($"Eq. 5 holds for t >= 1 time units, not t = {timeUnits}");
        }

        var denominator = 2 * (timeUnits - 1) / depth + 2;
        return 3 * beta * radius * radius / (32 * denominator * denominator); // Eq. 5
    }

    /// <summary>
    /// The gap of Eq. 9 on the Eq. 8 function while coordinate 2k+1 and some coordinate of B are unrevealed
    /// (t &lt; min(l, k Delta)):
    /// <code>f_G(theta_t) - f_G(theta*) &gt;= (1/(2 alpha)) [gamma^2/(2k) + delta^2/l]</code>
    /// The supplement prints 1/(2 alpha n); n is left over from the distributed setting of Scaman et al. (2018) and is 1
    /// here - with n = 1 it is exactly the gap between <see cref="NonSmoothWorstCase.UnrevealedMinimumValue"/> and the
    /// minimum when beta = gamma (1 + 1/sqrt(2k)) (our reconstruction).
    /// </summary>
    public static double NonSmoothGap(NonSmoothWorstCase f) =>
        1 / (2 * f.Curvature) * (f.PairWeight * f.PairWeight / (2 * f.K) + f.MaxWeight * f.MaxWeight / f.L); // Eq. 9

    /// <summary>
    /// The non-smooth convex lower bound (Eq. 10): for an L-Lipschitz f with ||theta*|| &lt;= R, after t time units,
    /// <code>f_G(theta_t) - f_G(theta*) &gt;= (R L / 36) sqrt(1/(1 + t/Delta)^2 + 1/(1 + t))</code>
    /// </summary>
    public static double NonSmooth(double timeUnits, int depth, double lipschitz, double radius)
    {
        Check(timeUnits, depth);
        var chain = 1 + timeUnits / depth;
        return radius * lipschitz / 36 * Math.Sqrt(1 / (chain * chain) + 1 / (1 + timeUnits)); // Eq. 10
    }

    private static void Check(double timeUnits, int depth)
    {
        if (!(timeUnits >= 0) || depth < 1)
        {
            throw new InputException($"the bounds need t >= 0 time units and a depth Delta >= 1; got t = {timeUnits}, Delta = {depth}");
        }
    }
}

/// <summary>The supplement's upper bounds for AGD with noisy gradients and PPRS (section 2, convex case).</summary>
internal static class UpperBounds
{
    /// <summary>
    /// Lemma 1 (Eq. 11): AGD with eta = 1/beta on a beta-smooth convex f with gradient noise of variance sigma^2,
    /// after t iterations: f(y_t) - f(x*) &lt;= 2 beta ||x_0 - x*||^2/(t + 1)^2 + (t + 1) sigma^2/(2 beta).
    /// </summary>
    public static double NoisyAcceleratedGradient(double beta, double radius, double variance, int iterations) =>
        2 * beta * radius * radius / Square(iterations + 1) + (iterations + 1) * variance / (2 * beta); // Eq. 11

    /// <summary>
    /// Eq. 12: PPRS with smoothing gamma, variance sigma^2 of the gradient estimate, T iterations:
    /// 2 L R^2/(gamma (T + 1)^2) + (T + 1) sigma^2 gamma/(2 L) + L gamma sqrt(d).
    /// </summary>
    public static double PprsWithSmoothing(double lipschitz, double radius, double gamma, double variance, int dimension, int iterations) =>
        2 * lipschitz * radius * radius / (gamma * Square(iterations + 1))
        + (iterations + 1) * variance * gamma / (2 * lipschitz)
        + lipschitz * gamma * Math.Sqrt(dimension); // Eq. 12

    /// <summary>
    /// Eq. 13: PPRS with gamma = R d^(-1/4)/(T + 1) and K samples, T iterations (sigma^2 &lt;= L^2/K):
    /// f_G(theta_T) - f_G(theta*) &lt;= 3 L R d^(1/4)/(T + 1) + L R d^(-1/4)/(2K), in expectation.
    /// </summary>
    public static double Pprs(double lipschitz, double radius, int dimension, int iterations, int samples)
    {
        var d4 = Math.Pow(dimension, 0.25);
        return 3 * lipschitz * radius * d4 / (iterations + 1) + lipschitz * radius / d4 / (2 * samples); // Eq. 13
    }

    /// <summary>Eq. 13, right: (7/2) L R d^(1/4)/(T + 1), for K &gt;= (T + 1)/sqrt(d).</summary>
    public static double PprsSimplified(double lipschitz, double radius, int dimension, int iterations) =>
        3.5 * lipschitz * radius * Math.Pow(dimension, 0.25) / (iterations + 1); // Eq. 13, right

    /// <summary>Eq. 14, right: the time to precision eps, (49/2) (L R/eps)^2 + 7 (L R/eps) Delta d^(1/4).</summary>
    public static double PprsTimeToPrecision(double lipschitz, double radius, double precision, int depth, int dimension)
    {
        var ratio = lipschitz * radius / precision;
        return 24.5 * ratio * ratio + 7 * ratio * depth * Math.Pow(dimension, 0.25); // Eq. 14
    }

    private static double Square(double x) => x * x;
}
