using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>
/// PPRS's parameters: T iterations, smoothing gamma, K samples per iteration, step eta.
/// <see cref="Defaults"/> are the theorem's (supplement Eq. 13 and line 63); override any with <c>with</c>.
/// </summary>
internal sealed record PprsParameters(int Iterations, double Gamma, int Samples, double StepSize)
{
    /// <summary>
    /// For an L-Lipschitz f on R^d with ||theta_0 - theta*|| &lt;= R, run for T iterations:
    /// <code>
    /// gamma = R d^(-1/4) / (T + 1)          (Eq. 13)
    /// K     = ceil((T + 1) / sqrt(d))       (Eq. 13)
    /// eta   = 1/beta_gamma = gamma / L      (f^gamma is L/gamma-smooth, supplement line 63; Lemma 1's eta = 1/beta)
    /// </code>
    /// </summary>
    public static PprsParameters Defaults(double lipschitz, double radius, int dimension, int iterations)
    {
        if (!(lipschitz > 0) || !(radius > 0) || dimension < 1 || iterations < 0)
        {
            throw new InputException(
                $"PPRS's defaults need L > 0, R > 0, d >= 1, T >= 0; got L = {lipschitz}, R = {radius}, d = {dimension}, T = {iterations}");
        }

        var gamma = radius * Math.Pow(dimension, -0.25) / (iterations + 1); // Eq. 13
        var samples = (int)Math.Ceiling((iterations + 1) / Math.Sqrt(dimension)); // Eq. 13
        return new PprsParameters(iterations, gamma, samples, gamma / lipschitz); // eta = gamma/L
    }

    /// <summary>
    /// The most iterations T whose default K = ceil((T+1)/sqrt(d)) fits in a budget of t time units:
    /// 2 T (K m + Delta - 1) &lt;= t (Eq. 14 for m = 1).
    /// </summary>
    public static int IterationsWithin(long timeUnits, int dimension, int depth, int terms = 1)
    {
        var iterations = 0;
        while (TimeUnits.PipelinedRun(iterations + 1, DefaultSamples(dimension, iterations + 1), depth, terms) <= timeUnits)
        {
            iterations++;
        }

        return iterations;
    }

    /// <summary>2 T (K m + Delta - 1), the time units of the whole run (Eq. 14 for m = 1).</summary>
    public long TimeUnitsOn(int depth, int terms = 1) => TimeUnits.PipelinedRun(Iterations, Samples, depth, terms);

    internal void Validate()
    {
        if (Iterations < 0 || Samples < 1 || !(Gamma >= 0) || !double.IsFinite(Gamma))
        {
            throw new InputException($"PPRS needs T >= 0, K >= 1 and gamma >= 0; got T = {Iterations}, K = {Samples}, gamma = {Gamma}");
        }

        StepSizes.Check(StepSize);
    }

    private static int DefaultSamples(int dimension, int iterations) => (int)Math.Ceiling((iterations + 1) / Math.Sqrt(dimension));
}

/// <summary>
/// The estimate of grad f^gamma(theta), f^gamma(theta) = E[f(theta + gamma X)] with X ~ N(0, I_d) (randomized
/// smoothing, Duchi, Bartlett, Wainwright 2012):
/// <code>g = (1/K) sum_{k=1..K} grad f(theta + gamma X_k)</code>
/// unbiased, E[g] = grad f^gamma(theta), and of variance at most L^2/K for an L-Lipschitz f (supplement line 77). The
/// K perturbed copies go through the oracle as K micro-batches: 2 (K + Delta - 1) time units. X_k comes from
/// <see cref="GaussianPerturbation"/> by (seed, iteration, k), apart from the oracle.
/// </summary>
internal sealed class SmoothedGradient
{
    private double[] points = [];
    private double[] gradients = [];
    private double[] values = [];

    public SmoothedGradient(double gamma, int samples, long seed)
    {
        if (!(gamma >= 0) || !double.IsFinite(gamma) || samples < 1)
        {
            throw new InputException($"the smoothed gradient needs gamma >= 0 and K >= 1 samples; got gamma = {gamma}, K = {samples}");
        }

        Gamma = gamma;
        Samples = samples;
        Seed = seed;
    }

    /// <summary>gamma, the smoothing radius.</summary>
    public double Gamma { get; }

    /// <summary>K, the perturbed copies per estimate.</summary>
    public int Samples { get; }

    public long Seed { get; }

    /// <summary>g = (1/K) sum_k grad f(theta + gamma X_k) with X_k drawn for <paramref name="iteration"/>; returns (1/K) sum_k f(theta + gamma X_k).</summary>
    public double Estimate(IGradientOracle oracle, ReadOnlySpan<double> theta, long iteration, Span<double> g)
    {
        var d = theta.Length;
        var K = Samples;
        if (points.Length != K * d)
        {
            points = new double[K * d];
            gradients = new double[K * d];
            values = new double[K];
        }

        GaussianPerturbation.PerturbedCopies(theta, Gamma, K, Seed, iteration, points); // theta + gamma X_k, k = 1..K
        oracle.Evaluate(points, K, values, gradients); // K micro-batches: 2 (K + Delta - 1) time units (Eq. 14)
        g.Clear();
        var meanValue = 0.0;
        for (var k = 0; k < K; k++) // the same order on every run and every rank layout
        {
            var gk = gradients.AsSpan(k * d, d);
            for (var i = 0; i < d; i++)
            {
                g[i] += gk[i];
            }

            meanValue += values[k];
        }

        for (var i = 0; i < d; i++)
        {
            g[i] /= K; // g = (1/K) sum_k grad f(theta + gamma X_k)
        }

        return meanValue / K;
    }
}

/// <summary>
/// PPRS, pipeline parallel randomized smoothing (Colin, Dos Santos, Scaman 2019): Nesterov's accelerated gradient
/// descent (Lemma 1) on the smoothed f^gamma(theta) = E[f(theta + gamma X)], each gradient estimated from K perturbed
/// copies theta + gamma X_k sent through the pipeline as K micro-batches:
/// <code>
/// g_t     = (1/K) sum_k grad f(x_t + gamma X_k)                  E[g_t] = grad f^gamma(x_t)
/// y_(t+1) = x_t - eta g_t                                      eta = gamma/L = 1/beta_gamma
/// x_(t+1) = y_(t+1) + mu_(t+1) (y_(t+1) - y_t)                mu_t = (lambda_t - 1)/lambda_(t+1)
/// </code>
/// from x_0 = y_0 = theta_0, reporting y_T. An iteration costs 2 (K + Delta - 1) time units (Eq. 14). With the
/// defaults gamma = R d^(-1/4)/(T+1), K = ceil((T+1)/sqrt(d)) (Eq. 13) and an L-Lipschitz convex f, in expectation
/// <code>f(y_T) - f* &lt;= 3 L R d^(1/4)/(T+1) + L R d^(-1/4)/(2K) &lt;= (7/2) L R d^(1/4)/(T+1)   (Eq. 13)</code>
/// from Eq. 12: Lemma 1 with beta = L/gamma and sigma^2 &lt;= L^2/K, plus f &lt;= f^gamma &lt;= f + L gamma sqrt(d).
/// </summary>
internal sealed class Pprs
{
    public Pprs(PprsParameters parameters, long seed)
    {
        parameters.Validate();
        Parameters = parameters;
        Seed = seed;
    }

    public PprsParameters Parameters { get; }

    public long Seed { get; }

    public OptimizationTrace Run(IGradientOracle oracle, ReadOnlySpan<double> theta0)
    {
        var d = oracle.Dimension;
        StepSizes.CheckStart(theta0.Length, d);
        var (T, gamma, K, eta) = Parameters;
        var smoothed = new SmoothedGradient(gamma, K, Seed);
        var x = theta0.ToArray();
        var y = theta0.ToArray();
        var g = new double[d];
        var support = new SupportTracker(d);
        support.Add(x);
        var records = new List<OptimizationRecord>(T + 1) { new(0, oracle.ElapsedTimeUnits, oracle.Monitor(y), support.Count) };
        var lambda = NesterovMomentum.FirstLambda; // lambda_(t+1), from lambda_0 = 0
        for (var t = 0; t < T; t++)
        {
            smoothed.Estimate(oracle, x, t, g); // g_t, an unbiased estimate of grad f^gamma(x_t): 2 (K + Delta - 1) units
            var lambdaNext = NesterovMomentum.NextLambda(lambda); // lambda_(t+2)
            var mu = NesterovMomentum.Mu(lambda, lambdaNext); // mu_(t+1) = (lambda_(t+1) - 1)/lambda_(t+2)
            NesterovMomentum.Step(x, y, g, eta, mu); // y_(t+1) = x_t - eta g_t;  x_(t+1) = y_(t+1) + mu_(t+1)(y_(t+1) - y_t)
            lambda = lambdaNext;
            support.Add(x);
            support.Add(y);
            records.Add(new OptimizationRecord(t + 1, oracle.ElapsedTimeUnits, oracle.Monitor(y), support.Count));
        }

        return new OptimizationTrace(records, y);
    }
}
