using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>
/// Non-convex PPRS's parameters (supplement section 2, non-convex case): T iterations of gradient descent on the
/// smoothed f^gamma with K samples per gradient estimate and step eta.
/// </summary>
internal sealed record NonConvexPprsParameters(int Iterations, double Gamma, int Samples, double StepSize)
{
    /// <summary>
    /// The choice after Eq. 22 for an L-Lipschitz f with f(theta_0) - min f &lt;= D on R^d, to reach a point whose
    /// Goldstein subdifferential of radius r holds a vector of norm at most eps:
    /// <code>
    /// gamma = r / sqrt(4 log(3L/eps) + 2 log(2e) d)
    /// K     = ceil(18 L^2/eps^2)
    /// T     = ceil(36 L (D + 2 gamma L sqrt d) / (gamma eps^2))
    /// eta   = gamma / L            (Lemma 2's eta = 1/beta; f^gamma is L/gamma-smooth)
    /// </code>
    /// </summary>
    public static NonConvexPprsParameters Defaults(double lipschitz, double radius, double precision, double gap, int dimension)
    {
        if (!(lipschitz > 0) || !(radius > 0) || !(precision > 0) || !(gap >= 0) || dimension < 1 || !(precision < 3 * lipschitz))
        {
            throw new InputException(
                $"non-convex PPRS's defaults need L > 0, r > 0, 0 < eps < 3L, D >= 0, d >= 1; got L = {lipschitz}, r = {radius}, eps = {precision}, D = {gap}, d = {dimension}");
        }

        var gamma = radius / Math.Sqrt(4 * Math.Log(3 * lipschitz / precision) + 2 * Math.Log(2 * Math.E) * dimension);
        var samples = (int)Math.Min(int.MaxValue, Math.Ceiling(18 * lipschitz * lipschitz / (precision * precision)));
        var iterations = (int)Math.Min(int.MaxValue, Math.Ceiling(36 * lipschitz * (gap + 2 * gamma * lipschitz * Math.Sqrt(dimension)) / (gamma * precision * precision)));
        return new NonConvexPprsParameters(iterations, gamma, samples, gamma / lipschitz);
    }

    /// <summary>a, with the Goldstein radius r = a sqrt(d) gamma, that the choice of gamma above implies: a^2 = (4 log(3L/eps) + 2 log(2e) d)/d.</summary>
    public static double RadiusFactor(double lipschitz, double precision, int dimension) =>
        Math.Sqrt((4 * Math.Log(3 * lipschitz / precision) + 2 * Math.Log(2 * Math.E) * dimension) / dimension);

    internal void Validate()
    {
        if (Iterations < 0 || Samples < 1 || !(Gamma > 0) || !double.IsFinite(Gamma))
        {
            throw new InputException($"non-convex PPRS needs T >= 0, K >= 1 and gamma > 0; got T = {Iterations}, K = {Samples}, gamma = {Gamma}");
        }

        StepSizes.Check(StepSize);
    }
}

/// <summary>
/// The supplement's bounds for non-convex PPRS (Lemma 2, Eqs. 19-22).
/// </summary>
internal static class NonConvexBounds
{
    /// <summary>
    /// Eq. 19: gradient descent with eta = gamma/L on f^gamma, K samples, T iterations, D = f(theta_0) - f(theta*):
    /// <code>min_(t &lt;= T) ||grad f^gamma(theta_t)||^2 &lt;= 2 L (D + 2 gamma L sqrt d)/(gamma T) + L^2/K</code>
    /// </summary>
    public static double SmoothedGradientSquared(double lipschitz, double gap, double gamma, int dimension, int iterations, int samples) =>
        2 * lipschitz * (gap + 2 * gamma * lipschitz * Math.Sqrt(dimension)) / (gamma * Math.Max(iterations, 1)) + lipschitz * lipschitz / samples;

    /// <summary>p_a = P(||X|| &gt; a sqrt d) &lt;= (a^2 e^(1 - a^2))^(d/2) for a &gt;= 1 (Chernoff, after Eq. 21).</summary>
    public static double TailProbability(double a, int dimension) =>
        a < 1 ? 1 : Math.Min(1, Math.Exp(dimension / 2.0 * (2 * Math.Log(a) + 1 - a * a)));

    /// <summary>Eq. 22: ||v|| &lt;= (p_a L + sqrt(Eq. 19)) / (1 - p_a), v in the Goldstein subdifferential of radius a sqrt(d) gamma.</summary>
    public static double GoldsteinNorm(double lipschitz, double gap, double gamma, int dimension, int iterations, int samples, double a)
    {
        var p = TailProbability(a, dimension);
        return p >= 1
            ? double.PositiveInfinity
            : (p * lipschitz + Math.Sqrt(SmoothedGradientSquared(lipschitz, gap, gamma, dimension, iterations, samples))) / (1 - p);
    }
}

/// <summary>One iterate's stationarity: ||g^gamma||, the norm of a Monte Carlo estimate of grad f^gamma(theta_t), and ||v||, of v (Eq. 20).</summary>
internal sealed record StationarityRecord(int Iteration, long ElapsedTimeUnits, double Value, double SmoothedGradientNorm, double GoldsteinNorm);

/// <summary>A non-convex PPRS run: the optimizer's trace and, per iterate, the stationarity the supplement bounds.</summary>
internal sealed record NonConvexPprsResult(OptimizationTrace Trace, IReadOnlyList<StationarityRecord> Stationarity, double RadiusFactor)
{
    /// <summary>min over t &lt;= T of ||grad f^gamma(theta_t)||^2, estimated: what Eq. 19 bounds.</summary>
    public double MinSmoothedGradientSquared => Stationarity.Min(s => s.SmoothedGradientNorm * s.SmoothedGradientNorm);

    /// <summary>min over t &lt;= T of ||v_t||: what Eq. 22 bounds (the Goldstein-type stationarity of radius a sqrt(d) gamma).</summary>
    public double MinGoldsteinNorm => Stationarity.Min(s => s.GoldsteinNorm);
}

/// <summary>
/// PPRS for non-convex f (supplement section 2, Lemma 2 and Eqs. 15-23): plain gradient descent, not Nesterov's, on the
/// smoothed f^gamma(theta) = E[f(theta + gamma X)], each gradient estimated from K perturbed copies sent through the
/// pipeline as K micro-batches (2 (K m + Delta - 1) time units):
/// <code>
/// g_t         = (1/K) sum_k grad f(theta_t + gamma X_k)          E[g_t] = grad f^gamma(theta_t)
/// theta_(t+1) = theta_t - eta g_t                               eta = gamma/L = 1/beta_gamma
/// </code>
/// The guarantee is not on f but on stationarity. Lemma 2 on f^gamma (Eq. 19) bounds min_t ||grad f^gamma(theta_t)||^2;
/// Eqs. 20-22 turn that into a bound on ||v||, v = E[grad f(theta_t + gamma X) | ||X|| &lt;= a sqrt d], a vector of the
/// Goldstein subdifferential of radius r = a sqrt(d) gamma (convex combinations of gradients within r of theta_t).
/// Both are expectations over X, not observable from one run. So after each iterate this class estimates them off
/// the clock, with M fresh perturbations X_j (drawn by (seed, -1 - t, j), a stream the algorithm never uses): the mean
/// of grad f(theta_t + gamma X_j) over all j (||g^gamma||) and over the j with ||X_j|| &lt;= a sqrt d (||v||). The
/// estimates carry a sampling error of about L/sqrt(M).
/// </summary>
internal sealed class NonConvexPprs
{
    public NonConvexPprs(NonConvexPprsParameters parameters, long seed, int monitorSamples, double radiusFactor)
    {
        parameters.Validate();
        if (monitorSamples < 1 || !(radiusFactor >= 1) || !double.IsFinite(radiusFactor))
        {
            throw new InputException($"the stationarity estimate needs M >= 1 samples and a >= 1; got M = {monitorSamples}, a = {radiusFactor}");
        }

        Parameters = parameters;
        Seed = seed;
        MonitorSamples = monitorSamples;
        RadiusFactor = radiusFactor;
    }

    public NonConvexPprsParameters Parameters { get; }

    public long Seed { get; }

    /// <summary>M, the perturbations of each stationarity estimate.</summary>
    public int MonitorSamples { get; }

    /// <summary>a: v conditions on ||X|| &lt;= a sqrt d.</summary>
    public double RadiusFactor { get; }

    /// <param name="oracle">The (pipelined) oracle, on the clock.</param>
    /// <param name="theta0">The start.</param>
    /// <param name="gradient">grad f at a point, off the clock (every rank computes the same numbers).</param>
    public NonConvexPprsResult Run(IGradientOracle oracle, ReadOnlySpan<double> theta0, GradientAt gradient)
    {
        var d = oracle.Dimension;
        StepSizes.CheckStart(theta0.Length, d);
        var (T, gamma, K, eta) = Parameters;
        var smoothed = new SmoothedGradient(gamma, K, Seed);
        var theta = theta0.ToArray();
        var g = new double[d];
        var support = new SupportTracker(d);
        support.Add(theta);
        var records = new List<OptimizationRecord>(T + 1);
        var stationarity = new List<StationarityRecord>(T + 1);
        Record(0);
        for (var t = 0; t < T; t++)
        {
            smoothed.Estimate(oracle, theta, t, g); // g_t: 2 (K m + Delta - 1) time units
            for (var i = 0; i < d; i++)
            {
                theta[i] -= eta * g[i]; // theta_(t+1) = theta_t - eta g_t
            }

            support.Add(theta);
            Record(t + 1);
        }

        return new NonConvexPprsResult(new OptimizationTrace(records, theta), stationarity, RadiusFactor);

        void Record(int t)
        {
            var value = oracle.Monitor(theta);
            records.Add(new OptimizationRecord(t, oracle.ElapsedTimeUnits, value, support.Count));
            var (smoothedNorm, goldsteinNorm) = Stationarity(theta, t, gradient);
            stationarity.Add(new StationarityRecord(t, oracle.ElapsedTimeUnits, value, smoothedNorm, goldsteinNorm));
        }
    }

    /// <summary>(||mean_j grad f(theta + gamma X_j)||, ||mean over ||X_j|| &lt;= a sqrt d of the same||), j = 1 .. M, X_j drawn by (seed, -1 - t, j).</summary>
    public (double SmoothedGradientNorm, double GoldsteinNorm) Stationarity(ReadOnlySpan<double> theta, int t, GradientAt gradient)
    {
        var d = theta.Length;
        var x = new double[d];
        var point = new double[d];
        var gj = new double[d];
        var all = new double[d];
        var inside = new double[d];
        var insideCount = 0;
        var limit = RadiusFactor * RadiusFactor * d; // ||X||^2 <= a^2 d
        for (var j = 0; j < MonitorSamples; j++)
        {
            GaussianPerturbation.Draw(Seed, -1L - t, j, x);
            var norm2 = 0.0;
            for (var i = 0; i < d; i++)
            {
                point[i] = theta[i] + Parameters.Gamma * x[i];
                norm2 += x[i] * x[i];
            }

            gradient(point, gj);
            var isInside = norm2 <= limit;
            insideCount += isInside ? 1 : 0;
            for (var i = 0; i < d; i++)
            {
                all[i] += gj[i];
                inside[i] += isInside ? gj[i] : 0;
            }
        }

        return (Norm(all) / MonitorSamples, insideCount == 0 ? double.NaN : Norm(inside) / insideCount);
    }

    private static double Norm(ReadOnlySpan<double> v)
    {
        var s = 0.0;
        foreach (var x in v)
        {
            s += x * x;
        }

        return Math.Sqrt(s);
    }
}

/// <summary>gradient = grad f(point).</summary>
internal delegate void GradientAt(ReadOnlySpan<double> point, Span<double> gradient);
