using MpiPipeline.Smoothing;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>The lower bounds (Eq. 3, 5, 10) and PPRS's upper bound (Eq. 13): formulas and measured runs.</summary>
[TestFixture]
internal sealed class BoundsTests
{
    [TestCase(0.5, 5, 0)]
    [TestCase(1, 5, 1)]
    [TestCase(5, 5, 2)] // floor(4/4) + 1
    [TestCase(100, 5, 25)] // floor(99/4) + 1
    [TestCase(100, 20, 6)] // floor(99/19) + 1
    [TestCase(100, 2, 100)]
    [TestCase(7.5, 1, 7)] // Delta = 1: floor(t)
    public void Eq3NonZeroCoordinates(double t, int depth, int expected)
    {
        Assert.That(LowerBounds.NonZeroCoordinates(t, depth), Is.EqualTo(expected));
        if (t >= 1)
        {
            Assert.That(LowerBounds.NonZeroCoordinates(t, depth), Is.LessThanOrEqualTo(LowerBounds.NonZeroCoordinatesRelaxed(t, depth)));
        }
    }

    [Test]
    public void Eq5And10Formulas()
    {
        // 3 beta R^2 / (32 (2 (t-1)/Delta + 2)^2) with beta = 2, R = 4, t = 11, Delta = 5: 96 / (32 * 36).
        Assert.That(LowerBounds.SmoothConvex(11, 5, 2, 4), Is.EqualTo(96.0 / (32 * 36)).Within(1e-15));
        // (R L / 36) sqrt(1/(1 + t/Delta)^2 + 1/(1 + t)) with R L = 36, t = 3, Delta = 1: sqrt(1/16 + 1/4).
        Assert.That(LowerBounds.NonSmooth(3, 1, 6, 6), Is.EqualTo(Math.Sqrt(1.0 / 16 + 1.0 / 4)).Within(1e-15));
        // Eq. 13: 3 L R d^(1/4)/(T+1) + L R d^(-1/4)/(2K) with d = 16, T = 5, K = 1, L R = 1: 1 + 1/4.
        Assert.That(UpperBounds.Pprs(1, 1, 16, 5, 1), Is.EqualTo(1.25).Within(1e-15));
        Assert.That(UpperBounds.Pprs(1, 1, 16, 5, 2), Is.LessThanOrEqualTo(UpperBounds.PprsSimplified(1, 1, 16, 5)));
        // Eq. 14 right side dominates the time of a run with the defaults.
        var p = PprsParameters.Defaults(1, 1, 16, 13);
        var precision = UpperBounds.PprsSimplified(1, 1, 16, 13);
        Assert.That(p.TimeUnitsOn(7), Is.LessThanOrEqualTo(UpperBounds.PprsTimeToPrecision(1, 1, precision, 7, 16)));
    }

    [Test]
    public void Eq5IsImpliedByTheGapOnTheSupport()
    {
        // beta/(16 (k_t + 1)) >= 3 beta R^2/(32 (2(t-1)/Delta + 2)^2) on the function built for the horizon.
        foreach (var depth in new[] { 1, 2, 5, 20 })
        {
            foreach (var t in new[] { 1.0, 3, 40, 1000 })
            {
                var f = SmoothConvexWorstCase.ForHorizon(t, depth, 1);
                var gap = LowerBounds.SmoothConvexGapOnSupport(f.K, f.K, 1);
                Assert.That(gap, Is.EqualTo(1 / (16.0 * (f.K + 1))).Within(1e-15));
                Assert.That(gap, Is.GreaterThanOrEqualTo(LowerBounds.SmoothConvex(t, depth, 1, f.DistanceToMinimizer)));
            }
        }
    }

    [Test]
    public void MeasuredRunsRespectEveryBound()
    {
        var rows = BoundsTable.Build([1, 5, 20], [60, 250], seed: 1);
        TestContext.Out.WriteLine(BoundsTable.ToMarkdown(rows));
        Assert.That(rows.Where(r => !r.Holds).Select(r => $"{r.Problem} / {r.Method} / Delta {r.Depth} / t {r.TimeUnits}: bound {r.Bound}, measured {r.Measured}"),
            Is.Empty);
        // Every problem, method and depth is there.
        Assert.That(rows.Select(r => r.Problem).Distinct(), Is.EquivalentTo(new[]
        {
            BoundsTable.SmoothConvex, BoundsTable.NonZero, BoundsTable.NonZeroNonConvex, BoundsTable.NonSmooth, BoundsTable.PprsUpper,
        }));
        Assert.That(rows.Count(r => r.Problem == BoundsTable.SmoothConvex), Is.EqualTo(3 * 2 * 3));
    }

    [TestCase(1)]
    [TestCase(5)]
    [TestCase(20)]
    public void PprsWithDefaultsMeetsEq13OnTheNonSmoothFunction(int depth)
    {
        const double lipschitz = 1, radius = 1;
        var f = NonSmoothWorstCase.ForHorizon(300, depth, lipschitz, radius);
        foreach (var iterations in new[] { 5, 20, 60 })
        {
            var p = PprsParameters.Defaults(lipschitz, radius, f.Dimension, iterations);
            var bound = UpperBounds.Pprs(lipschitz, radius, f.Dimension, p.Iterations, p.Samples); // Eq. 13
            for (var seed = 1; seed <= 3; seed++)
            {
                var trace = new Pprs(p, seed).Run(f.ToOracle(depth), new double[f.Dimension]);
                Assert.That(trace.Final.Value - f.MinimumValue, Is.LessThanOrEqualTo(bound), $"T = {iterations}, seed {seed}");
                Assert.That(trace.Final.ElapsedTimeUnits, Is.EqualTo(2L * iterations * (p.Samples + depth - 1))); // Eq. 14
            }
        }
    }

    [Test]
    public void GdAndAgdNonZeroCoordinatesObeyEq3AtEveryTime()
    {
        foreach (var depth in new[] { 1, 2, 5, 20 })
        {
            var f = new SmoothConvexWorstCase(81, 40, 1);
            foreach (var trace in new[]
                     {
                         GradientDescent.ForSmooth(1).Run(f.ToOracle(depth), new double[81], 30),
                         AcceleratedGradientDescent.ForSmooth(1).Run(f.ToOracle(depth), new double[81], 30),
                     })
            {
                foreach (var record in trace.Records)
                {
                    Assert.That(record.NonZeroCoordinates, Is.LessThanOrEqualTo(LowerBounds.NonZeroCoordinates(record.ElapsedTimeUnits, depth)));
                    if (record.ElapsedTimeUnits >= 1 && record.NonZeroCoordinates <= 2 * f.K)
                    {
                        // Eq. 4: the value is no better than the best point with that many leading coordinates.
                        Assert.That(record.Value - f.MinimumValue,
                            Is.GreaterThanOrEqualTo(LowerBounds.SmoothConvexGapOnSupport(record.NonZeroCoordinates, f.K, 1) - 1e-15));
                    }
                }
            }
        }
    }
}
