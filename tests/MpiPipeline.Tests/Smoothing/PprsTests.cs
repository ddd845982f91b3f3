using MpiPipeline.Pipeline;
using MpiPipeline.Smoothing;
using static MpiPipeline.Tests.Smoothing.SmoothingTestHelpers;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>PPRS: defaults (Eq. 13), the smoothed-gradient estimator, time units (Eq. 14), determinism.</summary>
[TestFixture]
internal sealed class PprsTests
{
    [Test]
    public void DefaultsAreTheTheorems()
    {
        // d = 16, T = 9: gamma = R d^(-1/4)/(T+1) = 2 * 0.5 / 10, K = ceil(10/4) = 3, eta = gamma/L.
        var p = PprsParameters.Defaults(lipschitz: 4, radius: 2, dimension: 16, iterations: 9);
        Assert.That(p.Iterations, Is.EqualTo(9));
        Assert.That(p.Gamma, Is.EqualTo(0.1).Within(1e-15));
        Assert.That(p.Samples, Is.EqualTo(3));
        Assert.That(p.StepSize, Is.EqualTo(0.025).Within(1e-15));
        Assert.That((p with { Samples = 7 }).Samples, Is.EqualTo(7)); // overridable
        Assert.That(p.TimeUnitsOn(5), Is.EqualTo(2 * 9 * (3 + 5 - 1)));
    }

    [TestCase(100, 400, 1)]
    [TestCase(100, 400, 20)]
    [TestCase(1600, 3000, 5)]
    public void IterationsWithinABudgetFillIt(long budget, int dimension, int depth)
    {
        var T = PprsParameters.IterationsWithin(budget, dimension, depth);
        Assert.That(PprsParameters.Defaults(1, 1, dimension, T).TimeUnitsOn(depth), Is.LessThanOrEqualTo(budget));
        Assert.That(PprsParameters.Defaults(1, 1, dimension, T + 1).TimeUnitsOn(depth), Is.GreaterThan(budget));
    }

    [Test]
    public void PerturbationsAreAPureFunctionOfSeedIterationAndSample()
    {
        var a = new double[50];
        var b = new double[50];
        GaussianPerturbation.Draw(7, 3, 2, a);
        GaussianPerturbation.Draw(7, 3, 2, b);
        Assert.That(a, Is.EqualTo(b));
        foreach (var (seed, iteration, sample) in new[] { (8L, 3L, 2), (7L, 4L, 2), (7L, 3L, 1) })
        {
            GaussianPerturbation.Draw(seed, iteration, sample, b);
            Assert.That(a, Is.Not.EqualTo(b));
        }
    }

    [Test]
    public void PerturbationsAreStandardNormal()
    {
        var x = new double[20_000];
        GaussianPerturbation.Draw(1, 0, 0, x);
        var mean = x.Average();
        var variance = x.Sum(v => (v - mean) * (v - mean)) / (x.Length - 1);
        Assert.That(mean, Is.EqualTo(0).Within(5 / Math.Sqrt(x.Length)));
        Assert.That(variance, Is.EqualTo(1).Within(5 * Math.Sqrt(2.0 / x.Length)));
    }

    [Test]
    public void SmoothedGradientIsUnbiasedOnAQuadratic()
    {
        // Eq. 1 is a quadratic: f(theta + gamma X) has mean f(theta) + gamma^2/2 tr(H) and gradient mean grad f(theta),
        // because grad f(theta + gamma X) = grad f(theta) + gamma H X. H = beta/4 M.
        var beta = 4.0;
        var f = new SmoothConvexWorstCase(5, 2, beta);
        var theta = RandomPoint(5, 9);
        var exact = ClosedFormGradient(f, theta);
        const double gamma = 0.5;
        const int samples = 4, seeds = 3000;
        var oracle = f.ToOracle(3);
        var mean = new double[5];
        var meanValue = 0.0;
        var g = new double[5];
        for (var seed = 0; seed < seeds; seed++)
        {
            meanValue += new SmoothedGradient(gamma, samples, seed).Estimate(oracle, theta, iteration: 0, g) / seeds;
            for (var i = 0; i < 5; i++)
            {
                mean[i] += g[i] / seeds;
            }
        }

        // Each coordinate's error is gamma (H Xbar)_i, Xbar ~ N(0, I/(K N)): standard deviation gamma ||H_i|| / sqrt(K N).
        for (var i = 0; i < 5; i++)
        {
            var rowNorm = beta / 4 * Math.Sqrt(4 + (i > 0 ? 1 : 0) + (i < 4 ? 1 : 0));
            var sigma = gamma * rowNorm / Math.Sqrt(samples * seeds);
            Assert.That(mean[i], Is.EqualTo(exact[i]).Within(5 * sigma), $"coordinate {i}");
        }

        // E f(theta + gamma X) = f(theta) + gamma^2/2 tr(H), tr(H) = beta/4 * 2 * 5 - 0 (the e_1 term is linear).
        // Var f(theta + gamma X) = gamma^2 ||grad f||^2 + gamma^4 tr(H^2)/2; tr(H^2) = (beta/4)^2 (5 * 4 + 8 * 1).
        var traceH = beta / 4 * 2 * 5;
        var traceH2 = beta / 4 * (beta / 4) * 28;
        var valueSigma = Math.Sqrt((gamma * gamma * exact.Sum(x => x * x) + Math.Pow(gamma, 4) * traceH2 / 2) / (samples * seeds));
        Assert.That(meanValue, Is.EqualTo(f.Value(theta) + gamma * gamma / 2 * traceH).Within(5 * valueSigma));
        // K N micro-batches, N calls of 2 (K + Delta - 1) time units.
        Assert.That(oracle.ElapsedTimeUnits, Is.EqualTo(seeds * TimeUnits.PipelinedEvaluation(samples, 3)));
    }

    [TestCase(1, 1)]
    [TestCase(5, 3)]
    [TestCase(20, 8)]
    public void PprsSpendsTwoTimesKPlusDeltaMinusOnePerIteration(int depth, int samples)
    {
        var f = NonSmoothWorstCase.ForHorizon(20, depth, 1, 1);
        var parameters = PprsParameters.Defaults(1, 1, f.Dimension, 6) with { Samples = samples };
        var oracle = f.ToOracle(depth);
        var trace = new Pprs(parameters, seed: 3).Run(oracle, new double[f.Dimension]);
        Assert.That(trace.Records.Select(r => r.ElapsedTimeUnits),
            Is.EqualTo(Enumerable.Range(0, 7).Select(t => t * 2L * (samples + depth - 1)))); // Eq. 14
        Assert.That(oracle.ElapsedTimeUnits, Is.EqualTo(parameters.TimeUnitsOn(depth)));
        Assert.That(oracle.ForwardOperations, Is.EqualTo(6L * samples * depth)); // the work: K Delta forwards per iteration
        Assert.That(oracle.BackwardOperations, Is.EqualTo(6L * samples * depth));
    }

    [Test]
    public void SameSeedSameIteratesOtherSeedOtherIterates()
    {
        var f = NonSmoothWorstCase.ForHorizon(40, 2, 1, 1);
        var parameters = PprsParameters.Defaults(1, 1, f.Dimension, 10);
        var start = new double[f.Dimension];
        var first = new Pprs(parameters, 11).Run(f.ToOracle(2), start);
        var again = new Pprs(parameters, 11).Run(f.ToOracle(2), start);
        var other = new Pprs(parameters, 12).Run(f.ToOracle(2), start);
        Assert.That(again.FinalIterate, Is.EqualTo(first.FinalIterate));
        Assert.That(again.Records, Is.EqualTo(first.Records));
        Assert.That(other.FinalIterate, Is.Not.EqualTo(first.FinalIterate));
    }

    [Test]
    public void AnOracleOverChainSegmentsGivesTheOneProcessRunExactly()
    {
        // What the MPI version does in one process: the chain cut into stages, vectors handed from stage to stage.
        // Same seed, same perturbations (drawn by PPRS, not by the oracle): bit-identical iterates.
        var f = NonSmoothWorstCase.ForHorizon(60, 6, 1, 1);
        var parameters = PprsParameters.Defaults(1, 1, f.Dimension, 8) with { Samples = 3 };
        var start = new double[f.Dimension];
        var reference = new Pprs(parameters, 5).Run(f.ToOracle(6), start);
        var chain = f.ToChain(6);
        var staged = new StagedOracle(chain, Partition.ByBalance(6, [2, 1, 3]));
        var pipelined = new Pprs(parameters, 5).Run(staged, start);
        Assert.That(pipelined.FinalIterate, Is.EqualTo(reference.FinalIterate));
        Assert.That(pipelined.Records, Is.EqualTo(reference.Records));
    }

    [Test]
    public void PprsWithDefaultsConvergesOnAWellScaledNonSmoothFunction()
    {
        // Eq. 8 with weights of order 1: f(0) - f* = 0.47, R = ||theta*|| = 1.77, subgradients below L = 6 on the
        // ball of radius 2R. Eq. 13 with T = 200 (K = 59) promises 0.34 in expectation; this seed reaches 0.022.
        var f = new NonSmoothWorstCase(12, 3, 4, 0.7, 0.4, 1.1, 0.3);
        const double lipschitz = 6;
        var radius = f.DistanceToMinimizer;
        var parameters = PprsParameters.Defaults(lipschitz, radius, f.Dimension, 200);
        var start = new double[f.Dimension];
        var initialGap = f.Value(start) - f.MinimumValue;
        var trace = new Pprs(parameters, 1).Run(f.ToOracle(2), start);
        var gap = trace.Final.Value - f.MinimumValue;
        Assert.That(gap, Is.LessThanOrEqualTo(UpperBounds.Pprs(lipschitz, radius, f.Dimension, 200, parameters.Samples)));
        Assert.That(gap, Is.LessThan(initialGap / 4));
    }

    /// <summary>An oracle over chain segments, one after the other, with the time units of Eq. 14.</summary>
    private sealed class StagedOracle(Chain chain, IReadOnlyList<LayerRange> stages) : IGradientOracle
    {
        private readonly IReadOnlyList<ChainSegment> segments = chain.Segments(stages);

        public int Dimension => chain.InputDimension;

        public int Depth => chain.Depth;

        public int Terms => 1;

        public long ElapsedTimeUnits { get; private set; }

        public void Evaluate(ReadOnlySpan<double> points, int count, Span<double> values, Span<double> gradients)
        {
            var d = Dimension;
            for (var k = 0; k < count; k++)
            {
                var tapes = segments.Select(s => s.NewTape()).ToArray();
                double[] activation = points.Slice(k * d, d).ToArray();
                for (var s = 0; s < segments.Count; s++)
                {
                    var output = new double[segments[s].OutputDimension];
                    segments[s].Forward(activation, output, tapes[s]);
                    activation = output;
                }

                values[k] = activation[0];
                double[] gradient = [1.0];
                for (var s = segments.Count - 1; s >= 0; s--)
                {
                    var inputGradient = new double[segments[s].InputDimension];
                    segments[s].Backward(tapes[s], gradient, inputGradient);
                    gradient = inputGradient;
                }

                gradient.CopyTo(gradients.Slice(k * d, d));
            }

            ElapsedTimeUnits += TimeUnits.PipelinedEvaluation(count, Depth);
        }

        public double Monitor(ReadOnlySpan<double> theta) => chain.Value(theta);
    }
}
