using MpiPipeline.Smoothing;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>GD and AGD as pipelined baselines: convergence to Eq. 2, Lemma 1's rate, and their time units.</summary>
[TestFixture]
internal sealed class OptimizerTests
{
    [Test]
    public void NesterovSequenceStartsAsInLemma1()
    {
        var lambda1 = NesterovMomentum.FirstLambda;
        var lambda2 = NesterovMomentum.NextLambda(lambda1);
        Assert.That(lambda1, Is.EqualTo(1)); // lambda_1 = (1 + sqrt(1 + 0))/2
        Assert.That(lambda2, Is.EqualTo((1 + Math.Sqrt(5)) / 2).Within(1e-15));
        Assert.That(NesterovMomentum.Mu(lambda1, lambda2), Is.EqualTo(0)); // mu_1 = 0: the first step is plain GD
        var lambda3 = NesterovMomentum.NextLambda(lambda2);
        Assert.That(NesterovMomentum.Mu(lambda2, lambda3), Is.EqualTo((lambda2 - 1) / lambda3));
    }

    [TestCase(1)]
    [TestCase(4)]
    public void AgdReachesTheEq2Optimum(int depth)
    {
        var beta = 2.0;
        var f = new SmoothConvexWorstCase(9, 3, beta);
        var trace = AcceleratedGradientDescent.ForSmooth(beta).Run(f.ToOracle(depth), new double[9], 400);
        var thetaStar = f.Minimizer();
        Assert.That(trace.FinalIterate, Is.EqualTo(thetaStar).Within(1e-6));
        Assert.That(trace.Final.Value, Is.EqualTo(f.MinimumValue).Within(1e-10));
        Assert.That(f.Value(thetaStar), Is.EqualTo(-beta / 8 * (1 - 1.0 / 8)).Within(1e-15)); // Eq. 2 with k = 3
    }

    [Test]
    public void GdReachesTheEq2OptimumToo()
    {
        var f = new SmoothConvexWorstCase(5, 2, 1);
        var trace = GradientDescent.ForSmooth(1).Run(f.ToOracle(3), new double[5], 3000);
        Assert.That(trace.FinalIterate, Is.EqualTo(f.Minimizer()).Within(1e-6));
    }

    [Test]
    public void AgdMeetsLemma1WithoutNoise()
    {
        // f(y_t) - f* <= 2 beta ||x_0 - x*||^2 / (t + 1)^2 (Eq. 11, sigma = 0) at every t: checks the indexing of mu_t.
        var beta = 1.0;
        var f = new SmoothConvexWorstCase(41, 20, beta);
        var trace = AcceleratedGradientDescent.ForSmooth(beta).Run(f.ToOracle(2), new double[41], 200);
        var radius = f.DistanceToMinimizer;
        foreach (var record in trace.Records)
        {
            Assert.That(record.Value - f.MinimumValue,
                Is.LessThanOrEqualTo(UpperBounds.NoisyAcceleratedGradient(beta, radius, 0, record.Iteration)), $"t = {record.Iteration}");
        }
    }

    [TestCase(1)]
    [TestCase(5)]
    [TestCase(20)]
    public void GdAndAgdSpendTwoDeltaTimeUnitsPerIteration(int depth)
    {
        var f = new SmoothConvexWorstCase(7, 3, 1);
        foreach (var run in new Func<ChainOracle, OptimizationTrace>[]
                 {
                     o => GradientDescent.ForSmooth(1).Run(o, new double[7], 6),
                     o => AcceleratedGradientDescent.ForSmooth(1).Run(o, new double[7], 6),
                 })
        {
            var oracle = f.ToOracle(depth);
            var trace = run(oracle);
            Assert.That(trace.Records.Select(r => r.ElapsedTimeUnits), Is.EqualTo(Enumerable.Range(0, 7).Select(t => 2L * depth * t)));
            Assert.That(oracle.ForwardOperations, Is.EqualTo(6L * depth));
            Assert.That(oracle.BackwardOperations, Is.EqualTo(6L * depth));
        }
    }

    [Test]
    public void GdRevealsOneCoordinatePerIterationOnEq1()
    {
        var f = new SmoothConvexWorstCase(21, 10, 1);
        var trace = GradientDescent.ForSmooth(1).Run(f.ToOracle(5), new double[21], 15);
        Assert.That(trace.Records.Select(r => r.NonZeroCoordinates), Is.EqualTo(Enumerable.Range(0, 16)));
    }

    [Test]
    public void SubgradientStep()
    {
        Assert.That(StepSizes.Subgradient(2, 4, 16), Is.EqualTo(0.125)); // R/(L sqrt(T))
    }
}
