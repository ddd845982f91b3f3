using MathNet.Numerics.Distributions;
using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The non-convex smooth worst case (supplement Eq. 6; Carmon, Duchi, Hinder, Sidford 2017), split along the chain:
/// <code>
/// node i_1:     h_1(theta) = -Psi(1) Phi(theta_1) + sum_{i=1..k} [ Psi(-theta_(2i)) Phi(-theta_(2i+1)) - Psi(theta_(2i)) Phi(theta_(2i+1)) ]
/// node i_Delta: h_2(theta) = sum_{i=1..k} [ Psi(-theta_(2i-1)) Phi(-theta_(2i)) - Psi(theta_(2i-1)) Phi(theta_(2i)) ]
/// f_G(theta) = -Psi(1) Phi(theta_1) + sum_{i=1..2k} [ Psi(-theta_i) Phi(-theta_(i+1)) - Psi(theta_i) Phi(theta_(i+1)) ]   (Eq. 6)
/// Psi(x) = 1{x &gt; 1/2} exp(1 - (2x - 1)^(-2)),   Phi(x) = sqrt(e) int_{-inf}^x exp(-t^2/2) dt = sqrt(2 pi e) N(x)
/// </code>
/// on R^d, d &gt;= 2k + 1, N the standard normal distribution function. Psi(1) = 1. Psi vanishes on x &lt;= 1/2 with all
/// its derivatives, so a coordinate whose neighbours are all 0 keeps a zero gradient: the zero-chain property.
/// Carmon et al. (part I, Lemma 3) bound the gradient's Lipschitz constant by 152 (<see cref="GradientLipschitz"/>;
/// quoted from that paper, the supplement does not state it) - a safe GD step is 1/152. The supplement's bound Eq. 7
/// has an unspecified constant c and is not evaluated here.
/// </summary>
internal sealed class NonConvexWorstCase : WorstCaseFunction
{
    /// <summary>ell_1 &lt;= 152, Carmon et al.'s bound on the gradient's Lipschitz constant of Eq. 6.</summary>
    public const double GradientLipschitz = 152;

    private static readonly double SqrtE = Math.Sqrt(Math.E);
    private static readonly double SqrtTwoPiE = Math.Sqrt(2 * Math.PI * Math.E);

    public NonConvexWorstCase(int dimension, int k)
        : base(dimension)
    {
        if (k < 0 || 2 * k + 1 > dimension)
        {
            throw new InputException($"Eq. 6 with k = {k} needs 2k + 1 <= d = {dimension} and k >= 0");
        }

        K = k;
        FirstNodeTerm = new FirstHalf(k);
        LastNodeTerm = new SecondHalf(k);
    }

    /// <summary>
    /// L, a Lipschitz constant of f itself (what non-convex PPRS's step gamma/L and Eq. 19 need): Carmon et al.
    /// (part I, Lemma 3, quoted) bound every partial derivative by 23, and only the first 2k + 1 coordinates move f,
    /// so ||grad f|| &lt;= 23 sqrt(2k + 1).
    /// </summary>
    public double Lipschitz => 23 * Math.Sqrt(2 * K + 1);

    /// <summary>
    /// D &gt;= f(0) - inf f, from the definitions alone: 0 &lt;= Psi &lt; e and 0 &lt; Phi &lt; sqrt(2 pi e), so
    /// -Psi(1) Phi(theta_1) &gt; -sqrt(2 pi e) and each of the 2k pair terms is &gt; -e sqrt(2 pi e); f(0) = -sqrt(2 pi e)/2.
    /// Loose, but a bound.
    /// </summary>
    public double GapFromZero => -SqrtTwoPiE / 2 + SqrtTwoPiE * (1 + 2 * K * Math.E);

    /// <summary>k: the function couples the first 2k + 1 coordinates.</summary>
    public int K { get; }

    public override ILocalTerm FirstNodeTerm { get; }

    public override ILocalTerm LastNodeTerm { get; }

    /// <summary>Psi(x) = 1{x &gt; 1/2} exp(1 - (2x - 1)^(-2)).</summary>
    public static double Psi(double x)
    {
        if (x <= 0.5)
        {
            return 0;
        }

        var u = 2 * x - 1;
        return Math.Exp(1 - 1 / (u * u));
    }

    /// <summary>Psi'(x) = 1{x &gt; 1/2} 4 (2x - 1)^(-3) exp(1 - (2x - 1)^(-2)) (0 where the exponential underflows).</summary>
    public static double PsiDerivative(double x)
    {
        if (x <= 0.5)
        {
            return 0;
        }

        var u = 2 * x - 1;
        var e = Math.Exp(1 - 1 / (u * u));
        return e == 0 ? 0 : 4 / (u * u * u) * e;
    }

    /// <summary>Phi(x) = sqrt(e) int_{-inf}^x exp(-t^2/2) dt = sqrt(2 pi e) N(x).</summary>
    public static double Phi(double x) => SqrtTwoPiE * Normal.CDF(0, 1, x);

    /// <summary>Phi'(x) = sqrt(e) exp(-x^2/2).</summary>
    public static double PhiDerivative(double x) => SqrtE * Math.Exp(-x * x / 2);

    /// <summary>Eq. 6 directly.</summary>
    public override double Value(ReadOnlySpan<double> theta)
    {
        CheckDimension(theta.Length, nameof(theta));
        var value = -Psi(1) * Phi(theta[0]);
        for (var i = 0; i < 2 * K; i++)
        {
            value += Pair(theta[i], theta[i + 1]); // theta_(i+1), theta_(i+2) in the paper's numbering
        }

        return value; // Eq. 6
    }

    /// <summary>The gradient of Eq. 6 directly.</summary>
    public override void Gradient(ReadOnlySpan<double> theta, Span<double> gradient)
    {
        CheckDimension(theta.Length, nameof(theta));
        CheckDimension(gradient.Length, nameof(gradient));
        gradient.Clear();
        gradient[0] = -Psi(1) * PhiDerivative(theta[0]);
        for (var i = 0; i < 2 * K; i++)
        {
            AddPairGradient(theta[i], theta[i + 1], 1, ref gradient[i], ref gradient[i + 1]);
        }
    }

    /// <summary>Psi(-a) Phi(-b) - Psi(a) Phi(b), one link of the chain.</summary>
    private static double Pair(double a, double b) => Psi(-a) * Phi(-b) - Psi(a) * Phi(b);

    private static void AddPairGradient(double a, double b, double scale, ref double ga, ref double gb)
    {
        ga += scale * (-PsiDerivative(-a) * Phi(-b) - PsiDerivative(a) * Phi(b));
        gb += scale * (-Psi(-a) * PhiDerivative(-b) - Psi(a) * PhiDerivative(b));
    }

    /// <summary>h_1: -Psi(1) Phi(theta_1) and the links (theta_(2i), theta_(2i+1)), i = 1..k (node i_1).</summary>
    private sealed class FirstHalf(int k) : ILocalTerm
    {
        public double Value(ReadOnlySpan<double> theta)
        {
            var value = -Psi(1) * Phi(theta[0]);
            for (var i = 1; i <= k; i++)
            {
                value += Pair(theta[2 * i - 1], theta[2 * i]);
            }

            return value;
        }

        public void AddGradient(ReadOnlySpan<double> theta, double scale, Span<double> g)
        {
            g[0] += scale * -Psi(1) * PhiDerivative(theta[0]);
            for (var i = 1; i <= k; i++)
            {
                AddPairGradient(theta[2 * i - 1], theta[2 * i], scale, ref g[2 * i - 1], ref g[2 * i]);
            }
        }
    }

    /// <summary>h_2: the links (theta_(2i-1), theta_(2i)), i = 1..k (node i_Delta).</summary>
    private sealed class SecondHalf(int k) : ILocalTerm
    {
        public double Value(ReadOnlySpan<double> theta)
        {
            var value = 0.0;
            for (var i = 1; i <= k; i++)
            {
                value += Pair(theta[2 * i - 2], theta[2 * i - 1]);
            }

            return value;
        }

        public void AddGradient(ReadOnlySpan<double> theta, double scale, Span<double> g)
        {
            for (var i = 1; i <= k; i++)
            {
                AddPairGradient(theta[2 * i - 2], theta[2 * i - 1], scale, ref g[2 * i - 2], ref g[2 * i - 1]);
            }
        }
    }
}
