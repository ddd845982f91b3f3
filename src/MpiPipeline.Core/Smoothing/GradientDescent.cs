using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>
/// Gradient descent, pipelined naively: each iteration sends the one point theta_t through the chain,
/// <code>theta_(t+1) = theta_t - eta_t g_t,   g_t = grad f(theta_t) (a subgradient if f is not smooth)</code>
/// costing 2 Delta time units (<see cref="TimeUnits.PipelinedEvaluation"/> with K = 1). With eta = 1/beta it is GD on
/// a beta-smooth f; with eta = R/(L sqrt(T)) it is the subgradient method, the non-smooth baseline (f of the best
/// iterate within RL/sqrt(T) of f*, Bubeck Thm. 3.2).
/// </summary>
internal sealed class GradientDescent
{
    private readonly Func<int, double> stepSize;

    /// <param name="stepSize">eta_t as a function of the iteration t = 0, 1, ...</param>
    public GradientDescent(Func<int, double> stepSize) => this.stepSize = stepSize;

    /// <summary>A constant step eta.</summary>
    public static GradientDescent WithStepSize(double eta)
    {
        StepSizes.Check(eta);
        return new GradientDescent(_ => eta);
    }

    /// <summary>eta = 1/beta for a beta-smooth f.</summary>
    public static GradientDescent ForSmooth(double beta) => WithStepSize(1 / beta);

    /// <summary>The subgradient method for an L-Lipschitz f with ||theta_0 - theta*|| &lt;= R run for T iterations: eta = R/(L sqrt(T)).</summary>
    public static GradientDescent Subgradient(double radius, double lipschitz, int iterations) =>
        WithStepSize(StepSizes.Subgradient(radius, lipschitz, iterations));

    public OptimizationTrace Run(IGradientOracle oracle, ReadOnlySpan<double> theta0, int iterations)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(iterations);
        var d = oracle.Dimension;
        StepSizes.CheckStart(theta0.Length, d);
        var theta = theta0.ToArray();
        var g = new double[d];
        Span<double> value = stackalloc double[1];
        var support = new SupportTracker(d);
        support.Add(theta);
        var records = new List<OptimizationRecord>(iterations + 1) { new(0, oracle.ElapsedTimeUnits, oracle.Monitor(theta), support.Count) };
        for (var t = 0; t < iterations; t++)
        {
            oracle.Evaluate(theta, 1, value, g); // g_t = grad f(theta_t): 2 Delta time units
            var eta = stepSize(t);
            for (var i = 0; i < d; i++)
            {
                theta[i] -= eta * g[i]; // theta_(t+1) = theta_t - eta g_t
            }

            support.Add(theta);
            records.Add(new OptimizationRecord(t + 1, oracle.ElapsedTimeUnits, oracle.Monitor(theta), support.Count));
        }

        return new OptimizationTrace(records, theta);
    }
}

/// <summary>Step sizes shared by the optimizers.</summary>
internal static class StepSizes
{
    /// <summary>eta = R/(L sqrt(T)), the subgradient method's constant step for a horizon of T iterations.</summary>
    public static double Subgradient(double radius, double lipschitz, int iterations)
    {
        if (!(radius > 0) || !(lipschitz > 0) || iterations < 1)
        {
            throw new InputException($"the subgradient step R/(L sqrt(T)) needs R > 0, L > 0, T >= 1; got R = {radius}, L = {lipschitz}, T = {iterations}");
        }

        return radius / (lipschitz * Math.Sqrt(iterations));
    }

    internal static void Check(double eta)
    {
        if (!(eta > 0) || !double.IsFinite(eta))
        {
            throw new InputException($"the step size eta = {eta} must be finite and > 0");
        }
    }

    internal static void CheckStart(int length, int dimension)
    {
        if (length != dimension)
        {
            throw new ArgumentException($"the start point has {length} coordinates; the oracle's f is defined on R^{dimension}");
        }
    }
}
