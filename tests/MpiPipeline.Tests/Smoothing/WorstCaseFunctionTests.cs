using MpiPipeline.Mpi;
using MpiPipeline.Smoothing;
using static MpiPipeline.Tests.Smoothing.SmoothingTestHelpers;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>The supplement's worst-case functions (Eq. 1, 2, 6, 8): through the chain vs closed form vs finite differences.</summary>
[TestFixture]
internal sealed class WorstCaseFunctionTests
{
    private static readonly int[] Depths = [1, 2, 3, 7];

    private static IEnumerable<TestCaseData> Functions()
    {
        yield return new TestCaseData(new SmoothConvexWorstCase(9, 3, 2.5)).SetName("Eq1_SmoothConvex");
        yield return new TestCaseData(new SmoothConvexWorstCase(4, 0, 1.0)).SetName("Eq1_SmoothConvex_k0");
        yield return new TestCaseData(new NonConvexWorstCase(10, 4)).SetName("Eq6_NonConvex");
        yield return new TestCaseData(new NonSmoothWorstCase(12, 3, 4, 0.7, 0.4, 1.1, 0.3)).SetName("Eq8_NonSmooth");
        yield return new TestCaseData(NonSmoothWorstCase.ForHorizon(9, 2, 1, 1)).SetName("Eq8_NonSmooth_ForHorizon");
    }

    [TestCaseSource(nameof(Functions))]
    public void ChainEqualsClosedForm(WorstCaseFunction f)
    {
        foreach (var depth in Depths)
        {
            var chain = f.ToChain(depth);
            for (var seed = 0; seed < 5; seed++)
            {
                var theta = RandomPoint(f.Dimension, seed);
                var g = new double[f.Dimension];
                var value = chain.ValueAndGradient(theta, g);
                Assert.That(value, Is.EqualTo(f.Value(theta)).Within(1e-12), $"value, Delta = {depth}");
                Assert.That(chain.Value(theta), Is.EqualTo(value));
                Assert.That(g, Is.EqualTo(ClosedFormGradient(f, theta)).Within(1e-12), $"gradient, Delta = {depth}");
            }
        }
    }

    [TestCaseSource(nameof(Functions))]
    public void GradientMatchesCentralDifferencesAwayFromKinks(WorstCaseFunction f)
    {
        // Eq. 1 and 6 are smooth; Eq. 8 is differentiable at a random point (no ties, no equal neighbours).
        var chain = f.ToChain(3);
        for (var seed = 10; seed < 13; seed++)
        {
            var theta = RandomPoint(f.Dimension, seed);
            var numeric = CentralDifferences(x => chain.Value(x), theta, 1e-6);
            Assert.That(ChainGradient(chain, theta), Is.EqualTo(numeric).Within(1e-6));
        }
    }

    [Test]
    public void Eq1IsTheSumOfItsTwoHalvesAndItsGradientIsBetaQuarterMThetaMinusE1()
    {
        var f = new SmoothConvexWorstCase(5, 2, 8); // beta/4 = 2
        double[] theta = [1, 2, 3, 4, 5];
        // Eq. 1: (2-1)^2 + (3-2)^2 + (4-3)^2 + (5-4)^2 + 1 + 25 - 2 = 28; times beta/8 = 1.
        Assert.That(f.Value(theta), Is.EqualTo(28));
        Assert.That(f.FirstNodeTerm.Value(theta) + f.LastNodeTerm.Value(theta), Is.EqualTo(28));
        // M theta = (2-2, 4-1-3, 6-2-4, 8-3-5, 10-4) = (0, 0, 0, 0, 6); beta/4 (M theta - e_1) = (-2, 0, 0, 0, 12).
        Assert.That(ClosedFormGradient(f, theta), Is.EqualTo(new double[] { -2, 0, 0, 0, 12 }));
    }

    [TestCase(1)]
    [TestCase(3)]
    [TestCase(10)]
    public void Eq2MinimizerHasZeroGradientAndTheClosedFormMinimum(int k)
    {
        var beta = 3.0;
        var f = new SmoothConvexWorstCase(2 * k + 3, k, beta);
        var thetaStar = f.Minimizer();
        Assert.That(thetaStar[0], Is.EqualTo(1 - 1.0 / (2 * k + 2)));
        Assert.That(ClosedFormGradient(f, thetaStar), Is.All.EqualTo(0).Within(1e-14));
        Assert.That(f.Value(thetaStar), Is.EqualTo(-beta / 8 * (1 - 1.0 / (2 * k + 2))).Within(1e-14)); // Eq. 2
        Assert.That(f.MinimumValue, Is.EqualTo(f.Value(thetaStar)).Within(1e-14));
        Assert.That(f.DistanceToMinimizer, Is.LessThanOrEqualTo(Math.Sqrt(2.0 * (k + 1) / 3))); // R^2 <= 2(k+1)/3
    }

    [Test]
    public void Eq6PsiAndPhi()
    {
        Assert.That(NonConvexWorstCase.Psi(1), Is.EqualTo(1));
        Assert.That(NonConvexWorstCase.Psi(0.5), Is.EqualTo(0));
        Assert.That(NonConvexWorstCase.Psi(-3), Is.EqualTo(0));
        Assert.That(NonConvexWorstCase.PsiDerivative(0.5 + 1e-300), Is.EqualTo(0)); // no 0 * inf
        Assert.That(NonConvexWorstCase.Phi(0), Is.EqualTo(Math.Sqrt(2 * Math.PI * Math.E) / 2).Within(1e-14));
        Assert.That(NonConvexWorstCase.Phi(40), Is.EqualTo(Math.Sqrt(2 * Math.PI * Math.E)).Within(1e-12));
        var numeric = (NonConvexWorstCase.Psi(0.9 + 1e-7) - NonConvexWorstCase.Psi(0.9 - 1e-7)) / 2e-7;
        Assert.That(NonConvexWorstCase.PsiDerivative(0.9), Is.EqualTo(numeric).Within(1e-6));
        Assert.That(NonConvexWorstCase.PhiDerivative(0.3), Is.EqualTo(Math.Sqrt(Math.E) * Math.Exp(-0.045)).Within(1e-15));
    }

    [Test]
    public void Eq6HasTheZeroChainProperty()
    {
        // With theta_1 = 2 (|theta_1| > 1/2) and the rest 0, only coordinates 1 and 2 can have a non-zero gradient.
        var f = new NonConvexWorstCase(9, 4);
        var theta = new double[9];
        theta[0] = 2;
        var g = ChainGradient(f.ToChain(3), theta);
        Assert.That(g[0], Is.Not.Zero);
        Assert.That(g[1], Is.Not.Zero);
        Assert.That(g.Skip(2), Is.All.EqualTo(0));
        // |theta_1| <= 1/2 reveals nothing beyond coordinate 1.
        theta[0] = 0.4;
        Assert.That(ChainGradient(f.ToChain(3), theta).Skip(1), Is.All.EqualTo(0));
    }

    [Test]
    public void Eq8SubgradientChoicesAtZero()
    {
        // At theta = 0: sign(0) = 0 for every |.|, the max picks the first coordinate of B (index 2k+2 in the paper).
        var f = new NonSmoothWorstCase(10, 2, 4, 1, 0.5, 2, 1);
        var g = ChainGradient(f.ToChain(4), new double[10]);
        var expected = new double[10];
        expected[0] = -2; // -beta
        expected[5] = 0.5; // delta e_(2k+2), 0-based 2k+1 = 5
        Assert.That(g, Is.EqualTo(expected));
    }

    [TestCase(0.7, 0.4, 1.1, 0.3)] // beta >= gamma (1 + 1/(2k)): two levels
    [TestCase(1.0, 0.4, 1.05, 0.5)] // beta < gamma (1 + 1/(2k)): one level
    public void Eq8ClosedFormMinimizerIsAMinimum(double gamma, double delta, double beta, double alpha)
    {
        var f = new NonSmoothWorstCase(12, 3, 4, gamma, delta, beta, alpha);
        var thetaStar = f.Minimizer();
        var minimum = f.Value(thetaStar);
        var random = new Random(1);
        for (var trial = 0; trial < 2000; trial++)
        {
            var scale = trial % 2 == 0 ? 1e-3 : 0.3;
            var other = thetaStar.Select(x => x + scale * (2 * random.NextDouble() - 1)).ToArray();
            Assert.That(f.Value(other), Is.GreaterThanOrEqualTo(minimum - 1e-12));
        }
    }

    [TestCase(10, 1)]
    [TestCase(10, 5)]
    [TestCase(37, 20)]
    [TestCase(400, 3)]
    public void Eq8ForHorizonHasNormROfTheMinimizerAndTheEq9Gap(long t, int depth)
    {
        var (lipschitz, radius) = (2.0, 3.0);
        var f = NonSmoothWorstCase.ForHorizon(t, depth, lipschitz, radius);
        var k = (int)(t / depth) + 1;
        Assert.That(f.K, Is.EqualTo(k));
        Assert.That(f.L, Is.EqualTo(t + 1));
        Assert.That(f.Dimension, Is.EqualTo(2 * k + 1 + t + 1));
        Assert.That(f.DistanceToMinimizer, Is.EqualTo(radius).Within(1e-12)); // our choice of alpha
        // f* = -gamma^2/(2 k alpha) - delta^2/(2 alpha l) with beta = gamma (1 + 1/sqrt(2k)).
        var expected = -f.PairWeight * f.PairWeight / (2 * k * f.Curvature) - f.MaxWeight * f.MaxWeight / (2 * f.Curvature * f.L);
        Assert.That(f.MinimumValue, Is.EqualTo(expected).Within(1e-12));
        // Eq. 9 (with n = 1) is the gap to the best point with coordinate 2k+1 and one coordinate of B at 0...
        Assert.That(f.UnrevealedMinimumValue - f.MinimumValue, Is.EqualTo(LowerBounds.NonSmoothGap(f)).Within(1e-12));
        // ...and it implies Eq. 10.
        Assert.That(LowerBounds.NonSmoothGap(f), Is.GreaterThanOrEqualTo(LowerBounds.NonSmooth(t, depth, lipschitz, radius)));
    }

    [Test]
    public void Eq8ForHorizonIsLLipschitzOnTheBallOfRadius2R()
    {
        var (lipschitz, radius) = (1.0, 1.0);
        var f = NonSmoothWorstCase.ForHorizon(50, 5, lipschitz, radius);
        var random = new Random(2);
        var g = new double[f.Dimension];
        for (var trial = 0; trial < 200; trial++)
        {
            var theta = RandomPoint(f.Dimension, trial, 1);
            var norm = Math.Sqrt(theta.Sum(x => x * x));
            var scale = 2 * radius * random.NextDouble() / norm;
            theta = theta.Select(x => x * scale).ToArray();
            f.Gradient(theta, g);
            Assert.That(Math.Sqrt(g.Sum(x => x * x)), Is.LessThanOrEqualTo(lipschitz));
        }
    }

    [Test]
    public void InvalidParametersAreInputErrors()
    {
        Assert.Throws<InputException>(() => new SmoothConvexWorstCase(4, 2, 1)); // 2k + 1 > d
        Assert.Throws<InputException>(() => new SmoothConvexWorstCase(5, 2, 0));
        Assert.Throws<InputException>(() => new NonConvexWorstCase(2, 1));
        Assert.Throws<InputException>(() => new NonSmoothWorstCase(5, 2, 1, 1, 1, 1, 1)); // 2k + l = d
        Assert.Throws<InputException>(() => new SmoothConvexWorstCase(5, 2, 1).ToChain(0));
    }
}
