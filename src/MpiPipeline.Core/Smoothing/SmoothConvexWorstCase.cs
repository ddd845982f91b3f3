using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The convex beta-smooth worst case (supplement Eq. 1; Nesterov's function, Bubeck Thm. 3.14), split along the chain:
/// <code>
/// node i_1:     h_1(theta) = beta/8 [ sum_{i=1..k} (theta_(2i+1) - theta_(2i))^2 + theta_1^2 - 2 theta_1 ]
/// node i_Delta: h_2(theta) = beta/8 [ sum_{i=1..k} (theta_(2i) - theta_(2i-1))^2 + theta_(2k+1)^2 ]
/// f_G(theta) = beta/8 [ sum_{i=1..2k} (theta_(i+1) - theta_i)^2 + theta_1^2 + theta_(2k+1)^2 - 2 theta_1 ]   (Eq. 1)
/// </code>
/// on R^d with d &gt;= 2k + 1 (coordinates past 2k + 1 do not appear). Its gradient is beta/4 (M theta - e_1) with M
/// the tridiagonal (2, -1) matrix on the first 2k + 1 coordinates, 0 &lt;= M &lt;= 4 I, so f_G is beta-smooth.
/// (The supplement prints beta/8 (M theta - 2 e_1); differentiating Eq. 1 gives beta/4 (M theta - e_1), which is what
/// this class implements - the supplement's factor looks like a typo, the minimizer is the same.)
/// Minimizer theta*_i = 1 - i/(2k+2) for i &lt;= 2k+1, and f_G(theta*) = -beta/8 (1 - 1/(2k+2)) (Eq. 2).
/// </summary>
internal sealed class SmoothConvexWorstCase : WorstCaseFunction
{
    public SmoothConvexWorstCase(int dimension, int k, double beta)
        : base(dimension)
    {
        if (k < 0 || 2 * k + 1 > dimension)
        {
            throw new InputException($"Eq. 1 with k = {k} needs 2k + 1 <= d = {dimension} and k >= 0");
        }

        if (!(beta > 0) || !double.IsFinite(beta))
        {
            throw new InputException($"the smoothness beta = {beta} must be finite and > 0");
        }

        K = k;
        Beta = beta;
        FirstNodeTerm = new FirstHalf(this);
        LastNodeTerm = new SecondHalf(this);
    }

    /// <summary>k: the function couples the first 2k + 1 coordinates.</summary>
    public int K { get; }

    /// <summary>beta, the smoothness constant.</summary>
    public double Beta { get; }

    public override ILocalTerm FirstNodeTerm { get; }

    public override ILocalTerm LastNodeTerm { get; }

    /// <summary>f_G(theta*) = -beta/8 (1 - 1/(2k+2)) (Eq. 2).</summary>
    public double MinimumValue => -Beta / 8 * (1 - 1.0 / (2 * K + 2));

    /// <summary>R = ||theta_0 - theta*|| from theta_0 = 0: sqrt(sum_{i=1..2k+1} (1 - i/(2k+2))^2) &lt;= sqrt(2(k+1)/3).</summary>
    public double DistanceToMinimizer => Math.Sqrt(Minimizer().Sum(x => x * x));

    /// <summary>
    /// The function the Eq. 5 bound is proved on for a budget of t time units on a chain of depth Delta: k = k_t, the
    /// most non-zero coordinates any algorithm can have after t units (Eq. 3), d = 2k + 1.
    /// </summary>
    public static SmoothConvexWorstCase ForHorizon(double timeUnits, int depth, double beta)
    {
        var k = LowerBounds.NonZeroCoordinates(timeUnits, depth);
        if (k < 1)
        {
            throw new InputException($"t = {timeUnits} time units: the Eq. 5 construction needs t >= 1");
        }

        return new SmoothConvexWorstCase(2 * k + 1, k, beta);
    }

    /// <summary>theta*_i = 1 - i/(2k+2) for i = 1 .. 2k+1, 0 beyond (Eq. 2).</summary>
    public double[] Minimizer()
    {
        var theta = new double[Dimension];
        for (var i = 1; i <= 2 * K + 1; i++)
        {
            theta[i - 1] = 1 - (double)i / (2 * K + 2);
        }

        return theta;
    }

    /// <summary>Eq. 1 directly.</summary>
    public override double Value(ReadOnlySpan<double> theta)
    {
        CheckDimension(theta.Length, nameof(theta));
        var m = 2 * K + 1;
        var sum = theta[0] * theta[0] + theta[m - 1] * theta[m - 1] - 2 * theta[0];
        for (var i = 0; i + 1 < m; i++)
        {
            var difference = theta[i + 1] - theta[i];
            sum += difference * difference;
        }

        return Beta / 8 * sum; // Eq. 1
    }

    /// <summary>beta/4 (M theta - e_1), M = tridiag(-1, 2, -1) on the first 2k + 1 coordinates.</summary>
    public override void Gradient(ReadOnlySpan<double> theta, Span<double> gradient)
    {
        CheckDimension(theta.Length, nameof(theta));
        CheckDimension(gradient.Length, nameof(gradient));
        gradient.Clear();
        var m = 2 * K + 1;
        for (var i = 0; i < m; i++)
        {
            var mTheta = 2 * theta[i] - (i > 0 ? theta[i - 1] : 0) - (i + 1 < m ? theta[i + 1] : 0);
            gradient[i] = Beta / 4 * (mTheta - (i == 0 ? 1 : 0));
        }
    }

    /// <summary>h_1 = beta/8 [sum_{i=1..k} (theta_(2i+1) - theta_(2i))^2 + theta_1^2 - 2 theta_1] (node i_1).</summary>
    private sealed class FirstHalf(SmoothConvexWorstCase f) : ILocalTerm
    {
        public double Value(ReadOnlySpan<double> theta)
        {
            var sum = theta[0] * theta[0] - 2 * theta[0];
            for (var i = 1; i <= f.K; i++)
            {
                var difference = theta[2 * i] - theta[2 * i - 1]; // theta_(2i+1) - theta_(2i)
                sum += difference * difference;
            }

            return f.Beta / 8 * sum;
        }

        public void AddGradient(ReadOnlySpan<double> theta, double scale, Span<double> g)
        {
            var c = scale * f.Beta / 8;
            g[0] += c * (2 * theta[0] - 2);
            for (var i = 1; i <= f.K; i++)
            {
                var difference = theta[2 * i] - theta[2 * i - 1];
                g[2 * i] += c * 2 * difference;
                g[2 * i - 1] -= c * 2 * difference;
            }
        }
    }

    /// <summary>h_2 = beta/8 [sum_{i=1..k} (theta_(2i) - theta_(2i-1))^2 + theta_(2k+1)^2] (node i_Delta).</summary>
    private sealed class SecondHalf(SmoothConvexWorstCase f) : ILocalTerm
    {
        public double Value(ReadOnlySpan<double> theta)
        {
            var last = theta[2 * f.K];
            var sum = last * last;
            for (var i = 1; i <= f.K; i++)
            {
                var difference = theta[2 * i - 1] - theta[2 * i - 2]; // theta_(2i) - theta_(2i-1)
                sum += difference * difference;
            }

            return f.Beta / 8 * sum;
        }

        public void AddGradient(ReadOnlySpan<double> theta, double scale, Span<double> g)
        {
            var c = scale * f.Beta / 8;
            g[2 * f.K] += c * 2 * theta[2 * f.K];
            for (var i = 1; i <= f.K; i++)
            {
                var difference = theta[2 * i - 1] - theta[2 * i - 2];
                g[2 * i - 1] += c * 2 * difference;
                g[2 * i - 2] -= c * 2 * difference;
            }
        }
    }
}
