namespace MpiPipeline.Smoothing;

/// <summary>
/// Nesterov's accelerated gradient descent as in supplement Lemma 1 (Bubeck Thm. 3.19), pipelined naively (one point
/// per iteration, 2 Delta time units):
/// <code>
/// y_(t+1) = x_t - eta g_t,             g_t = grad f(x_t),  eta = 1/beta
/// x_(t+1) = y_(t+1) + mu_(t+1) (y_(t+1) - y_t),   mu_t = (lambda_t - 1)/lambda_(t+1)
/// lambda_0 = 0,  lambda_t = (1 + sqrt(1 + 4 lambda_(t-1)^2))/2
/// </code>
/// from x_0 = y_0 = theta_0; the reported iterate is y_t, with f(y_t) - f* &lt;= 2 beta ||x_0 - x*||^2/(t+1)^2 for a
/// beta-smooth convex f (Eq. 11 without noise). Bubeck's index s is t + 1 here, so mu_1 = 0: the first step is plain GD.
/// </summary>
internal sealed class AcceleratedGradientDescent
{
    private readonly double eta;

    public AcceleratedGradientDescent(double stepSize)
    {
        StepSizes.Check(stepSize);
        eta = stepSize;
    }

    /// <summary>eta = 1/beta for a beta-smooth f (Lemma 1).</summary>
    public static AcceleratedGradientDescent ForSmooth(double beta) => new(1 / beta);

    public OptimizationTrace Run(IGradientOracle oracle, ReadOnlySpan<double> theta0, int iterations)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(iterations);
        var d = oracle.Dimension;
        StepSizes.CheckStart(theta0.Length, d);
        var x = theta0.ToArray();
        var y = theta0.ToArray();
        var g = new double[d];
        Span<double> value = stackalloc double[1];
        var support = new SupportTracker(d);
        support.Add(x);
        var records = new List<OptimizationRecord>(iterations + 1) { new(0, oracle.ElapsedTimeUnits, oracle.Monitor(y), support.Count) };
        var lambda = NesterovMomentum.FirstLambda; // lambda_(t+1), starting at lambda_1
        for (var t = 0; t < iterations; t++)
        {
            oracle.Evaluate(x, 1, value, g); // g_t = grad f(x_t): 2 Delta time units
            var lambdaNext = NesterovMomentum.NextLambda(lambda); // lambda_(t+2)
            var mu = NesterovMomentum.Mu(lambda, lambdaNext); // mu_(t+1)
            NesterovMomentum.Step(x, y, g, eta, mu);
            lambda = lambdaNext;
            support.Add(x);
            support.Add(y);
            records.Add(new OptimizationRecord(t + 1, oracle.ElapsedTimeUnits, oracle.Monitor(y), support.Count));
        }

        return new OptimizationTrace(records, y);
    }
}

/// <summary>The lambda and mu sequences of Lemma 1 and the update they drive, shared by AGD and PPRS.</summary>
internal static class NesterovMomentum
{
    /// <summary>lambda_1 = (1 + sqrt(1 + 4 lambda_0^2))/2 = 1, from lambda_0 = 0.</summary>
    public static double FirstLambda => NextLambda(0);

    /// <summary>lambda_t = (1 + sqrt(1 + 4 lambda_(t-1)^2))/2.</summary>
    public static double NextLambda(double lambda) => (1 + Math.Sqrt(1 + 4 * lambda * lambda)) / 2;

    /// <summary>mu_t = (lambda_t - 1)/lambda_(t+1).</summary>
    public static double Mu(double lambda, double lambdaNext) => (lambda - 1) / lambdaNext;

    /// <summary>
    /// In place, with x = x_t, y = y_t and g = g_t: y becomes y_(t+1) = x_t - eta g_t and x becomes
    /// x_(t+1) = y_(t+1) + mu (y_(t+1) - y_t).
    /// </summary>
    public static void Step(Span<double> x, Span<double> y, ReadOnlySpan<double> g, double eta, double mu)
    {
        for (var i = 0; i < x.Length; i++)
        {
            var yNext = x[i] - eta * g[i]; // y_(t+1) = x_t - eta g_t
            x[i] = yNext + mu * (yNext - y[i]); // x_(t+1) = y_(t+1) + mu_(t+1) (y_(t+1) - y_t)
            y[i] = yNext;
        }
    }
}
