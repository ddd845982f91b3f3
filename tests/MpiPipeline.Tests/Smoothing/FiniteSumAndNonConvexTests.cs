using MpiPipeline.Mpi;
using MpiPipeline.Smoothing;
using static MpiPipeline.Tests.Smoothing.SmoothingTestHelpers;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>
/// Issue 19 items 1 and 5: the finite sum's clock and values (m micro-batches per point), the one-at-a-time schedule
/// as the clock's negative control, and non-convex PPRS (GD on f^gamma, supplement Lemma 2) against an independent
/// computation.
/// </summary>
[TestFixture]
internal sealed class FiniteSumAndNonConvexTests
{
    /// <summary>
    /// K points on m terms through Delta nodes: the dependency clock gives 2 (K m + Delta - 1) for GPipe and 2 K m Delta
    /// one at a time, every node does K m forwards and K m backwards, whatever the order.
    /// </summary>
    [TestCase(1, 1, 1)]
    [TestCase(3, 1, 5)]
    [TestCase(1, 4, 5)]
    [TestCase(3, 4, 5)]
    [TestCase(2, 3, 20)]
    public void TheClockCountsKmMicroBatches(int samples, int terms, int depth)
    {
        var f = NonSmooth();
        var points = Enumerable.Range(0, samples).SelectMany(k => RandomPoint(f.Dimension, 10 + k)).ToArray();
        foreach (var (schedule, expected) in new[]
                 {
                     (ChainSchedule.Pipelined, 2L * (samples * terms + depth - 1)),
                     (ChainSchedule.OneAtATime, 2L * samples * terms * depth),
                 })
        {
            var oracle = new ChainOracle(f.ToChain(depth), terms, schedule);
            oracle.Evaluate(points, samples, new double[samples], new double[points.Length]);
            oracle.Evaluate(points, samples, new double[samples], new double[points.Length]);
            Assert.That(oracle.LastCallTimeUnits, Is.EqualTo(expected), $"{schedule}");
            Assert.That(oracle.ElapsedTimeUnits, Is.EqualTo(2 * expected), $"{schedule}: calls add up");
            for (var j = 0; j < depth; j++)
            {
                Assert.That(oracle.ForwardOperationsOf(j), Is.EqualTo(2L * samples * terms), $"{schedule}, node {j}");
                Assert.That(oracle.BackwardOperationsOf(j), Is.EqualTo(2L * samples * terms), $"{schedule}, node {j}");
            }
        }

        Assert.That(TimeUnits.PipelinedEvaluation(samples, depth, terms), Is.EqualTo(2L * (samples * terms + depth - 1)));
        Assert.That(TimeUnits.SequentialEvaluation(samples, depth, terms), Is.EqualTo(2L * samples * terms * depth));
    }

    /// <summary>m distinct terms: f and its gradient are the mean of the terms', computed here term by term.</summary>
    [Test]
    public void DistinctTermsAverageToTheMeanOfTheTerms()
    {
        var a = PprsProblem.NonSmooth(13, 1, 1);
        var b = new NonSmoothWorstCase(13, 2, 4, 0.3, 0.2, 0.5, 0.7);
        var c = PprsProblem.NonSmooth(13, 2, 0.5);
        var terms = new[] { a, b, c };
        var oracle = new ChainOracle(terms.Select(t => t.ToChain(4)).ToArray());
        var batched = new BatchedChainOracle(terms.Select(t => t.ToChain(4)).ToArray());
        var points = RandomPoint(13, 1).Concat(RandomPoint(13, 2)).ToArray();
        var values = new double[2];
        var gradients = new double[26];
        oracle.Evaluate(points, 2, values, gradients);
        var batchedValues = new double[2];
        var batchedGradients = new double[26];
        batched.Evaluate(points, 2, batchedValues, batchedGradients);
        for (var k = 0; k < 2; k++)
        {
            var x = points[(k * 13)..((k + 1) * 13)];
            var expected = terms.Average(t => t.Value(x));
            Assert.That(values[k], Is.EqualTo(expected).Within(1e-14), $"point {k}");
            Assert.That(batchedValues[k], Is.EqualTo(values[k]), $"point {k}: the batched oracle");
            for (var i = 0; i < 13; i++)
            {
                var gi = terms.Average(t => ClosedFormGradient(t, x)[i]);
                Assert.That(gradients[k * 13 + i], Is.EqualTo(gi).Within(1e-14), $"point {k}, coordinate {i}");
            }
        }

        Assert.That(oracle.LastCallTimeUnits, Is.EqualTo(2 * (2 * 3 + 4 - 1)));
        Assert.That(batched.ElapsedTimeUnits, Is.EqualTo(2 * (2 * 3 + 4 - 1)));
        Assert.That(oracle.Monitor(points[..13]), Is.EqualTo(terms.Average(t => t.Value(points[..13]))).Within(1e-14));
    }

    /// <summary>
    /// The poster's rates from the clock: T subgradient iterations cost 2 T (m + Delta - 1); PPRS's T iterations of
    /// K = ceil((T+1)/sqrt d) points cost 2 T (K m + Delta - 1), i.e. about 2 (T^2/sqrt d) m + 2 T Delta.
    /// </summary>
    [Test]
    public void RunTimesFollowThePostersRates()
    {
        const int d = 100, depth = 20, m = 8, T = 99; // K = ceil(100/10) = 10
        var parameters = PprsParameters.Defaults(1, 1, d, T);
        Assert.That(parameters.Samples, Is.EqualTo(10));
        Assert.That(parameters.TimeUnitsOn(depth, m), Is.EqualTo(2L * T * (10 * m + depth - 1)));
        Assert.That(TimeUnits.PipelinedRun(T, 1, depth, m), Is.EqualTo(2L * T * (m + depth - 1)));
        Assert.That(PprsParameters.IterationsWithin(parameters.TimeUnitsOn(depth, m), d, depth, m), Is.EqualTo(T));
    }

    /// <summary>
    /// Non-convex PPRS is gradient descent (no momentum) on f^gamma: two steps equal
    /// theta_(t+1) = theta_t - eta (1/K) sum_k grad f(theta_t + gamma X_k), computed here from the closed-form gradient
    /// and the same X_k. (PPRS's AGD differs from the second step on.)
    /// </summary>
    [Test]
    public void NonConvexPprsIsGradientDescentOnTheSmoothedFunction()
    {
        var f = new NonConvexWorstCase(9, 4);
        const double gamma = 0.3, eta = 0.01;
        const int K = 4, seed = 5;
        var theta0 = RandomPoint(9, 7);
        var run = new NonConvexPprs(new NonConvexPprsParameters(2, gamma, K, eta), seed, 8, 1.5)
            .Run(f.ToOracle(3), theta0, (x, g) => f.Gradient(x, g));

        var theta = (double[])theta0.Clone();
        var x = new double[9];
        for (var t = 0; t < 2; t++)
        {
            var g = new double[9];
            for (var k = 0; k < K; k++)
            {
                GaussianPerturbation.Draw(seed, t, k, x);
                var gk = ClosedFormGradient(f, theta.Zip(x, (a, b) => a + gamma * b).ToArray());
                for (var i = 0; i < 9; i++)
                {
                    g[i] += gk[i] / K;
                }
            }

            for (var i = 0; i < 9; i++)
            {
                theta[i] -= eta * g[i];
            }

            Assert.That(run.Trace.Records[t + 1].Value, Is.EqualTo(f.Value(theta)).Within(1e-12), $"iteration {t + 1}");
        }

        Assert.That(run.Trace.FinalIterate, Is.EqualTo(theta).Within(1e-12));
        Assert.That(run.Trace.Final.ElapsedTimeUnits, Is.EqualTo(2 * 2 * (K + 3 - 1)));
    }

    /// <summary>
    /// The stationarity estimate at an iterate: ||mean_j grad f(theta + gamma X_j)|| over M draws of the monitor stream
    /// (seed, -1 - t, j), and the same over the draws with ||X_j|| &lt;= a sqrt d, computed here independently; with a
    /// small a some draws fall outside and the two differ.
    /// </summary>
    [Test]
    public void TheStationarityEstimateIsTheMeanGradientOverThePerturbations()
    {
        var f = new NonConvexWorstCase(9, 4);
        const double gamma = 0.5, a = 1.05;
        const int M = 40, seed = 2;
        var pprs = new NonConvexPprs(new NonConvexPprsParameters(0, gamma, 1, 0.1), seed, M, a);
        var theta = RandomPoint(9, 4);
        var (smoothed, goldstein) = pprs.Stationarity(theta, 3, (x, g) => f.Gradient(x, g));

        var all = new double[9];
        var inside = new double[9];
        var insideCount = 0;
        var x = new double[9];
        for (var j = 0; j < M; j++)
        {
            GaussianPerturbation.Draw(seed, -4, j, x);
            var g = ClosedFormGradient(f, theta.Zip(x, (p, q) => p + gamma * q).ToArray());
            var keep = x.Sum(v => v * v) <= a * a * 9;
            insideCount += keep ? 1 : 0;
            for (var i = 0; i < 9; i++)
            {
                all[i] += g[i] / M;
                inside[i] += keep ? g[i] : 0;
            }
        }

        Assert.That(insideCount, Is.InRange(1, M - 1), "the test needs draws on both sides of a sqrt d");
        Assert.That(smoothed, Is.EqualTo(Math.Sqrt(all.Sum(v => v * v))).Within(1e-12));
        Assert.That(goldstein, Is.EqualTo(Math.Sqrt(inside.Sum(v => v * v)) / insideCount).Within(1e-12));
    }

    /// <summary>
    /// Eq. 19 on the Eq. 6 function with its L and D: the measured min_t ||grad f^gamma(theta_t)||^2 of a run with the
    /// supplement's eta = gamma/L is below the bound; and the Eq. 22-23 choices as printed.
    /// </summary>
    [Test]
    public void NonConvexPprsMeetsEq19AndTheDefaultsAreEq23()
    {
        var f = new NonConvexWorstCase(11, 5);
        var L = f.Lipschitz;
        var eps = L / 2;
        var defaults = NonConvexPprsParameters.Defaults(L, 1, eps, f.GapFromZero, 11);
        var gamma = 1 / Math.Sqrt(4 * Math.Log(6) + 2 * Math.Log(2 * Math.E) * 11);
        Assert.That(defaults.Gamma, Is.EqualTo(gamma).Within(1e-15));
        Assert.That(defaults.Samples, Is.EqualTo(72)); // 18 L^2/(L/2)^2
        Assert.That(defaults.StepSize, Is.EqualTo(gamma / L).Within(1e-15));
        Assert.That(defaults.Iterations, Is.EqualTo((int)Math.Ceiling(36 * L * (f.GapFromZero + 2 * gamma * L * Math.Sqrt(11)) / (gamma * eps * eps))));

        var parameters = defaults with { Iterations = 40, Samples = 8 };
        var a = NonConvexPprsParameters.RadiusFactor(L, eps, 11);
        Assert.That(a * Math.Sqrt(11) * gamma, Is.EqualTo(1).Within(1e-12), "the Goldstein radius r = a sqrt(d) gamma = 1");
        var run = new NonConvexPprs(parameters, 3, 64, a).Run(f.ToOracle(2), new double[11], (x, g) => f.Gradient(x, g));
        var bound = NonConvexBounds.SmoothedGradientSquared(L, f.GapFromZero, gamma, 11, 40, 8);
        Assert.That(run.MinSmoothedGradientSquared, Is.LessThan(bound));
        Assert.That(run.MinGoldsteinNorm, Is.LessThan(NonConvexBounds.GoldsteinNorm(L, f.GapFromZero, gamma, 11, 40, 8, a)));
        Assert.That(f.Value(new double[11]), Is.EqualTo(-Math.Sqrt(2 * Math.PI * Math.E) / 2).Within(1e-12), "f(0) = -Phi(0)");
        Assert.That(NonConvexBounds.TailProbability(1, 11), Is.EqualTo(1), "a = 1: Chernoff's bound says nothing");
        Assert.Throws<InputException>(() => NonConvexPprsParameters.Defaults(L, 1, 3 * L, 1, 11));
    }

    private static NonSmoothWorstCase NonSmooth() => PprsProblem.NonSmooth(13, 1, 1);
}
