using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The convex non-smooth worst case (supplement Eq. 8; Scaman et al. 2018, Thm. 2), split along the chain:
/// <code>
/// node i_1:     h_1(theta) = gamma sum_{i=1..k} |theta_(2i) - theta_(2i-1)| + delta max_{i in B} theta_i
/// node i_Delta: h_2(theta) = gamma sum_{i=1..k} |theta_(2i+1) - theta_(2i)| - beta theta_1 + alpha/2 ||theta||^2
/// f_G(theta) = gamma sum_{i=1..2k} |theta_(i+1) - theta_i| - beta theta_1 + delta max_{i in B} theta_i + alpha/2 ||theta||^2   (Eq. 8)
/// B = {2k+2, ..., 2k+1+l}
/// </code>
/// on R^d with 2k + l &lt; d. The symbols gamma, delta, beta, alpha are the supplement's names for this function's
/// weights (not PPRS's smoothing gamma nor a smoothness beta); here they are <see cref="PairWeight"/>,
/// <see cref="MaxWeight"/>, <see cref="Slope"/> and <see cref="Curvature"/>. In h_2, ||theta|| is taken over the
/// first d coordinates (theta, not the partial sum in coordinate d+1): an interpretation, the supplement does not say.
/// <para>
/// Subgradient choices (fixed, so that runs repeat): d|u|/du = sign(u) with sign(0) = 0, and the max contributes
/// e_j for the smallest index j among the maximizers - Nesterov's resisting oracle, which reveals one new coordinate
/// of B per call.
/// </para>
/// <para>
/// The minimizer in closed form (derived here; the supplement only uses its norm): the problem separates into the
/// chain block 1..2k+1, the block B and the rest (0). On B: theta_i = -delta/(alpha l), value -delta^2/(2 alpha l).
/// On the chain, a 1-D total-variation problem: when beta &gt;= gamma (1 + 1/(2k)), theta_1 = (beta - gamma)/alpha
/// and theta_2 .. theta_(2k+1) = gamma/(2k alpha), value -(beta - gamma)^2/(2 alpha) - gamma^2/(4 k alpha); otherwise
/// all 2k + 1 coordinates equal beta/((2k+1) alpha), value -beta^2/(2 (2k+1) alpha). With the supplement's choice
/// beta = gamma (1 + 1/sqrt(2k)) the first case holds and f* = -gamma^2/(2 k alpha) - delta^2/(2 alpha l). An
/// algorithm that has not reached coordinate 2k+1 nor every coordinate of B is at best at
/// -(beta - gamma)^2/(2 alpha) = -gamma^2/(4 k alpha) on the chain and 0 on B: the gap of Eq. 9.
/// </para>
/// </summary>
internal sealed class NonSmoothWorstCase : WorstCaseFunction
{
    public NonSmoothWorstCase(int dimension, int k, int l, double pairWeight, double maxWeight, double slope, double curvature)
        : base(dimension)
    {
        if (k < 0 || l < 0 || 2 * k + l >= dimension)
        {
            throw new InputException($"Eq. 8 with k = {k}, l = {l} needs k, l >= 0 and 2k + l < d = {dimension}");
        }

        foreach (var (name, value) in new[] { ("gamma", pairWeight), ("delta", maxWeight), ("beta", slope), ("alpha", curvature) })
        {
            if (!(value > 0) || !double.IsFinite(value))
            {
                throw new InputException($"Eq. 8 needs {name} finite and > 0, not {value}");
            }
        }

        K = k;
        L = l;
        PairWeight = pairWeight;
        MaxWeight = maxWeight;
        Slope = slope;
        Curvature = curvature;
        FirstNodeTerm = new FirstHalf(this);
        LastNodeTerm = new SecondHalf(this);
    }

    /// <summary>k: the absolute-value chain couples coordinates 1 .. 2k+1.</summary>
    public int K { get; }

    /// <summary>l: the size of the max block B = {2k+2, ..., 2k+1+l}.</summary>
    public int L { get; }

    /// <summary>gamma in Eq. 8.</summary>
    public double PairWeight { get; }

    /// <summary>delta in Eq. 8.</summary>
    public double MaxWeight { get; }

    /// <summary>beta in Eq. 8.</summary>
    public double Slope { get; }

    /// <summary>alpha in Eq. 8.</summary>
    public double Curvature { get; }

    /// <summary>The Lipschitz constant L the function was built for by <see cref="ForHorizon"/> (NaN otherwise).</summary>
    public double Lipschitz { get; private init; } = double.NaN;

    public override ILocalTerm FirstNodeTerm { get; }

    public override ILocalTerm LastNodeTerm { get; }

    /// <summary>The first 0-based index of the max block B (the paper's 2k+2).</summary>
    private int BlockStart => 2 * K + 1;

    /// <summary>
    /// The function behind Eq. 10 for a budget of t time units on a chain of depth Delta, L-Lipschitz, with
    /// ||theta*|| = R (supplement line 58): k = floor(t/Delta) + 1, l = floor(t) + 1, gamma = L/(9 sqrt k),
    /// delta = L/9, beta = gamma (1 + 1/sqrt(2k)), d = 2k + 1 + l. The supplement leaves alpha implicit; from the
    /// minimizer above, ||theta*||^2 = (gamma^2/k + delta^2/l)/alpha^2, so
    /// <code>alpha = (L / (9 R)) sqrt(1/k^2 + 1/l)</code>
    /// makes ||theta*|| = R exactly, and then Eq. 9 gives Eq. 10 (our reconstruction). The subgradients are bounded by
    /// 2 sqrt(2k) gamma + beta + delta + alpha ||theta|| &lt;= (0.62 + 0.16 ||theta||/R) L, so f_G is L-Lipschitz on the
    /// ball of radius 2R around 0, which holds theta_0 = 0 and theta*.
    /// </summary>
    public static NonSmoothWorstCase ForHorizon(double timeUnits, int depth, double lipschitz, double radius)
    {
        if (!(timeUnits >= 0) || depth < 1 || !(lipschitz > 0) || !(radius > 0))
        {
            throw new InputException($"Eq. 10's function needs t >= 0, Delta >= 1, L > 0, R > 0; got t = {timeUnits}, Delta = {depth}, L = {lipschitz}, R = {radius}");
        }

        var k = (int)Math.Floor(timeUnits / depth) + 1; // k = floor(t/Delta) + 1
        var l = (int)Math.Floor(timeUnits) + 1; // l = floor(t) + 1
        var gamma = lipschitz / (9 * Math.Sqrt(k)); // gamma = L/(9 sqrt k)
        var delta = lipschitz / 9; // delta = L/9
        var beta = gamma * (1 + 1 / Math.Sqrt(2 * k)); // beta = gamma (1 + 1/sqrt(2k))
        var alpha = lipschitz / (9 * radius) * Math.Sqrt(1.0 / ((double)k * k) + 1.0 / l); // ||theta*|| = R (our choice)
        return new NonSmoothWorstCase(2 * k + 1 + l, k, l, gamma, delta, beta, alpha) { Lipschitz = lipschitz };
    }

    /// <summary>theta*, from the closed form in the class comment.</summary>
    public double[] Minimizer()
    {
        var theta = new double[Dimension];
        var (first, others) = ChainMinimizer();
        theta[0] = first;
        for (var i = 1; i <= 2 * K; i++)
        {
            theta[i] = others;
        }

        for (var i = 0; i < L; i++)
        {
            theta[BlockStart + i] = -MaxWeight / (Curvature * L);
        }

        return theta;
    }

    /// <summary>f_G(theta*).</summary>
    public double MinimumValue => Value(Minimizer());

    /// <summary>R = ||theta*||, the distance from theta_0 = 0.</summary>
    public double DistanceToMinimizer => Math.Sqrt(Minimizer().Sum(x => x * x));

    /// <summary>
    /// The least value of f_G over points whose chain coordinate 2k+1 is 0 and that have a coordinate of B at 0:
    /// -(beta - gamma)^2/(2 alpha) for beta &gt;= gamma (the total variation is then at least |theta_1|), 0 otherwise.
    /// Any such point is at least <c>UnrevealedMinimumValue - MinimumValue</c> above the minimum (Eq. 9's gap).
    /// </summary>
    public double UnrevealedMinimumValue => -Math.Pow(Math.Max(Slope - PairWeight, 0), 2) / (2 * Curvature);

    /// <summary>Eq. 8 directly.</summary>
    public override double Value(ReadOnlySpan<double> theta)
    {
        CheckDimension(theta.Length, nameof(theta));
        var total = 0.0;
        for (var i = 0; i < 2 * K; i++)
        {
            total += PairWeight * Math.Abs(theta[i + 1] - theta[i]);
        }

        total -= Slope * theta[0];
        if (L > 0)
        {
            total += MaxWeight * theta[BlockArgMax(theta)];
        }

        var squares = 0.0;
        foreach (var x in theta)
        {
            squares += x * x;
        }

        return total + Curvature / 2 * squares; // Eq. 8
    }

    /// <summary>The subgradient of Eq. 8 with the class's choices at kinks, directly.</summary>
    public override void Gradient(ReadOnlySpan<double> theta, Span<double> gradient)
    {
        CheckDimension(theta.Length, nameof(theta));
        CheckDimension(gradient.Length, nameof(gradient));
        for (var i = 0; i < Dimension; i++)
        {
            gradient[i] = Curvature * theta[i];
        }

        for (var i = 0; i < 2 * K; i++)
        {
            var s = PairWeight * Math.Sign(theta[i + 1] - theta[i]);
            gradient[i + 1] += s;
            gradient[i] -= s;
        }

        gradient[0] -= Slope;
        if (L > 0)
        {
            gradient[BlockArgMax(theta)] += MaxWeight;
        }
    }

    /// <summary>The smallest index of B where theta is largest.</summary>
    private int BlockArgMax(ReadOnlySpan<double> theta)
    {
        var best = BlockStart;
        for (var i = BlockStart + 1; i < BlockStart + L; i++)
        {
            if (theta[i] > theta[best])
            {
                best = i;
            }
        }

        return best;
    }

    private (double First, double Others) ChainMinimizer()
    {
        if (K == 0)
        {
            return (Slope / Curvature, 0); // -beta theta_1 + alpha/2 theta_1^2
        }

        if (Slope >= PairWeight * (1 + 1.0 / (2 * K)))
        {
            return ((Slope - PairWeight) / Curvature, PairWeight / (2 * K * Curvature));
        }

        var level = Slope / ((2 * K + 1) * Curvature);
        return (level, level);
    }

    /// <summary>h_1 = gamma sum_{i=1..k} |theta_(2i) - theta_(2i-1)| + delta max_B theta (node i_1).</summary>
    private sealed class FirstHalf(NonSmoothWorstCase f) : ILocalTerm
    {
        public double Value(ReadOnlySpan<double> theta)
        {
            var total = 0.0;
            for (var i = 1; i <= f.K; i++)
            {
                total += f.PairWeight * Math.Abs(theta[2 * i - 1] - theta[2 * i - 2]);
            }

            return f.L > 0 ? total + f.MaxWeight * theta[f.BlockArgMax(theta)] : total;
        }

        public void AddGradient(ReadOnlySpan<double> theta, double scale, Span<double> g)
        {
            for (var i = 1; i <= f.K; i++)
            {
                var s = scale * f.PairWeight * Math.Sign(theta[2 * i - 1] - theta[2 * i - 2]);
                g[2 * i - 1] += s;
                g[2 * i - 2] -= s;
            }

            if (f.L > 0)
            {
                g[f.BlockArgMax(theta)] += scale * f.MaxWeight;
            }
        }
    }

    /// <summary>h_2 = gamma sum_{i=1..k} |theta_(2i+1) - theta_(2i)| - beta theta_1 + alpha/2 ||theta||^2 (node i_Delta).</summary>
    private sealed class SecondHalf(NonSmoothWorstCase f) : ILocalTerm
    {
        public double Value(ReadOnlySpan<double> theta)
        {
            var total = -f.Slope * theta[0];
            for (var i = 1; i <= f.K; i++)
            {
                total += f.PairWeight * Math.Abs(theta[2 * i] - theta[2 * i - 1]);
            }

            var squares = 0.0;
            foreach (var x in theta)
            {
                squares += x * x;
            }

            return total + f.Curvature / 2 * squares;
        }

        public void AddGradient(ReadOnlySpan<double> theta, double scale, Span<double> g)
        {
            for (var i = 0; i < theta.Length; i++)
            {
                g[i] += scale * f.Curvature * theta[i];
            }

            for (var i = 1; i <= f.K; i++)
            {
                var s = scale * f.PairWeight * Math.Sign(theta[2 * i] - theta[2 * i - 1]);
                g[2 * i] += s;
                g[2 * i - 1] -= s;
            }

            g[0] -= scale * f.Slope;
        }
    }
}
