using MpiPipeline.Data;
using MpiPipeline.Dicod;

namespace MpiPipeline.Tests.Dicod;

/// <summary>
/// Coordinate descent on problem (1): beta kept up to date by the paper's update equals beta recomputed from scratch,
/// the soft-thresholding step is the exact minimiser along its coordinate (so F never increases), and the solvers
/// reach the same optimum, checked by the optimality conditions rather than against each other only.
/// </summary>
[TestFixture]
internal sealed class CoordinateDescentTests
{
    /// <summary>K = 3 atoms of P = 2 x L = 5, T = 80: every update reaches past segment borders of 10 to 30.</summary>
    private static CscProblem Small(double lambda = 0.5, int seed = 7)
    {
        const int k = 3, p = 2, l = 5, t = 80;
        var d = SyntheticCsc.Dictionary(k, p, l, (ulong)seed);
        var (x, _) = SyntheticCsc.Signal(d, k, p, l, t, density: 0.05, noise: 0.2, (ulong)seed);
        return new CscProblem(k, l, p, t, lambda, x, d);
    }

    [Test]
    public void BetaKeptByUpdatesEqualsBetaRecomputedFromScratch()
    {
        var problem = Small();
        var n = problem.ActivationLength;
        // Three segments, as three DICOD ranks would hold them; every update goes to all three (a rank ignores
        // what falls outside its reach), in a random order of coordinates and sizes.
        int[] bounds = [0, 20, 45, n];
        var segments = Enumerable.Range(0, 3).Select(w => new Segment(problem, bounds[w], bounds[w + 1] - bounds[w])).ToArray();
        var z = new double[problem.K * n];
        var random = new SplitMix64(3);
        for (var i = 0; i < 300; i++)
        {
            var k = random.NextInt(problem.K);
            var t = random.NextInt(n);
            var dz = (random.NextInt(2001) - 1000) / 250.0;
            z[(k * n) + t] += dz;
            foreach (var segment in segments)
            {
                segment.Apply(k, t, dz);
            }
        }

        var expected = new double[problem.K * n];
        problem.Beta(z, 0, n, expected);
        var largest = expected.Max(Math.Abs);
        Assert.That(largest, Is.GreaterThan(1.0), "the updates must move beta");
        for (var w = 0; w < 3; w++)
        {
            var s = segments[w];
            for (var k = 0; k < problem.K; k++)
            {
                for (var i = 0; i < s.Length; i++)
                {
                    Assert.That(s.Beta[(k * s.Length) + i], Is.EqualTo(expected[(k * n) + s.Start + i]).Within(1e-10 * largest), $"beta_{k}[{s.Start + i}]");
                    Assert.That(s.Z[(k * s.Length) + i], Is.EqualTo(z[(k * n) + s.Start + i]), $"Z_{k}[{s.Start + i}] (segment {w})");
                    var optimal = CscProblem.SoftThreshold(expected[(k * n) + s.Start + i], problem.Lambda) / problem.NormsSquared[k];
                    Assert.That(s.DeltaZ[(k * s.Length) + i], Is.EqualTo(optimal - z[(k * n) + s.Start + i]).Within(1e-9 * largest), $"Delta Z_{k}[{s.Start + i}]");
                }
            }
        }
    }

    [Test]
    public void SoftThresholdStepIsTheMinimiserAlongItsCoordinate()
    {
        var problem = Small();
        var n = problem.ActivationLength;
        var segment = new Segment(problem, 0, n);
        var random = new SplitMix64(11);
        var before = problem.Objective(segment.Z);
        var decreases = 0;
        for (var i = 0; i < 200; i++)
        {
            // Random coordinates, not the greedy ones: the step must be optimal for any choice.
            var k = random.NextInt(problem.K);
            var t = random.NextInt(n);
            var dz = segment.DeltaZ[(k * n) + t];
            segment.Apply(k, t, dz);
            var after = problem.Objective(segment.Z);
            Assert.That(after, Is.LessThanOrEqualTo(before + (1e-12 * Math.Abs(before))), $"step {i}: F went up");
            decreases += after < before ? 1 : 0;
            before = after;

            foreach (var epsilon in new[] { -1e-3, 1e-3 })
            {
                var moved = (double[])segment.Z.Clone();
                moved[(k * n) + t] += epsilon;
                Assert.That(problem.Objective(moved), Is.GreaterThanOrEqualTo(after - (1e-12 * Math.Abs(after))), $"step {i}: moving Z_{k}[{t}] by {epsilon} lowers F");
            }
        }

        Assert.That(decreases, Is.GreaterThan(10), "most steps must change something");
    }

    [Test]
    public void GreedyLgcdAndFistaReachTheOptimum()
    {
        var problem = Small(lambda: 0.3);
        var greedy = SequentialSolvers.CoordinateDescent(problem, 1e-10, 1, 1_000_000, "greedy");
        var lgcd = SequentialSolvers.CoordinateDescent(problem, 1e-10, 4, 1_000_000, "lgcd");
        var fista = SequentialSolvers.Fista(problem, 1e-10, 20_000);
        Assert.That(greedy.Converged && lgcd.Converged && fista.Converged, Is.True);

        // Optimality of problem (1), with c = D~_k * R = beta - Z ||D_k||^2: |c| <= lambda where Z = 0, and
        // c = lambda sign(Z) where Z != 0. Checked on greedy CD's result; the others must reach its F.
        var n = problem.ActivationLength;
        var beta = new double[problem.K * n];
        problem.Beta(greedy.Z, 0, n, beta);
        for (var k = 0; k < problem.K; k++)
        {
            for (var t = 0; t < n; t++)
            {
                var z = greedy.Z[(k * n) + t];
                var correlation = beta[(k * n) + t] - (z * problem.NormsSquared[k]);
                if (z == 0)
                {
                    Assert.That(Math.Abs(correlation), Is.LessThanOrEqualTo(problem.Lambda + 1e-8));
                }
                else
                {
                    Assert.That(correlation, Is.EqualTo(problem.Lambda * Math.Sign(z)).Within(1e-8));
                }
            }
        }

        var optimum = problem.Objective(greedy.Z);
        Assert.That(greedy.Z.Count(v => v != 0), Is.GreaterThan(3), "a solution with some activations");
        Assert.That(problem.Objective(lgcd.Z), Is.EqualTo(optimum).Within(1e-9 * optimum));
        Assert.That(problem.Objective(fista.Z), Is.EqualTo(optimum).Within(1e-7 * optimum));
    }

    [Test]
    public void ReplayedCurveEndsAtTheObjectiveAndNeverRises()
    {
        var problem = Small();
        var run = SequentialSolvers.CoordinateDescent(problem, 1e-9, 3, 1_000_000, "lgcd");
        Assert.That(run.Curve[0].Objective, Is.EqualTo(0.5 * CscProblem.Dot(problem.X, problem.X)).Within(1e-9));
        Assert.That(run.Curve[^1].Updates, Is.EqualTo(run.Updates));
        Assert.That(run.Curve[^1].Objective, Is.EqualTo(problem.Objective(run.Z)).Within(1e-8 * run.Curve[^1].Objective));
        for (var i = 1; i < run.Curve.Count; i++)
        {
            Assert.That(run.Curve[i].Objective, Is.LessThanOrEqualTo(run.Curve[i - 1].Objective * (1 + 1e-12)));
        }
    }

    [Test]
    public void LocallyGreedyGoesPassiveOnlyWhenNothingIsAboveTol()
    {
        var problem = Small();
        var segment = new Segment(problem, 0, problem.ActivationLength);
        var chooser = new LocallyGreedy(segment, 5, problem.L - 1);
        const double tol = 1e-6;
        while (!chooser.Passive)
        {
            chooser.Step(tol);
        }

        Assert.That(segment.DeltaZ.Max(Math.Abs), Is.LessThanOrEqualTo(tol));

        // An outside update within reach wakes the chooser up; it works again until nothing is above tol.
        segment.Apply(0, 3, 5.0);
        chooser.Touched(3);
        Assert.That(chooser.Passive, Is.False);
        while (!chooser.Passive)
        {
            chooser.Step(tol);
        }

        Assert.That(segment.DeltaZ.Max(Math.Abs), Is.LessThanOrEqualTo(tol));
    }

    [Test]
    public void SyntheticProblemIsTheSameForTheSameSeedAndAtomsHaveUnitNorm()
    {
        var a = SyntheticCsc.Dictionary(4, 3, 9, 5);
        var b = SyntheticCsc.Dictionary(4, 3, 9, 5);
        var c = SyntheticCsc.Dictionary(4, 3, 9, 6);
        Assert.That(a, Is.EqualTo(b));
        Assert.That(a, Is.Not.EqualTo(c));
        for (var k = 0; k < 4; k++)
        {
            Assert.That(CscProblem.Dot(a.AsSpan(k * 27, 27), a.AsSpan(k * 27, 27)), Is.EqualTo(1.0).Within(1e-12));
        }

        var (x1, z1) = SyntheticCsc.Signal(a, 4, 3, 9, 500, 0.01, 0.1, 5);
        var (x2, z2) = SyntheticCsc.Signal(a, 4, 3, 9, 500, 0.01, 0.1, 5);
        Assert.That(x1, Is.EqualTo(x2));
        Assert.That(z1, Is.EqualTo(z2));
        Assert.That(z1.Count(v => v != 0), Is.InRange(5, 60), "rho = 0.01 of 4 x 492 activations");
    }

    [Test]
    public void SoftThresholdShrinksTowardZero()
    {
        Assert.That(CscProblem.SoftThreshold(3.0, 1.0), Is.EqualTo(2.0));
        Assert.That(CscProblem.SoftThreshold(-3.0, 1.0), Is.EqualTo(-2.0));
        Assert.That(CscProblem.SoftThreshold(0.5, 1.0), Is.EqualTo(0.0));
        Assert.That(CscProblem.SoftThreshold(-1.0, 1.0), Is.EqualTo(0.0));
    }
}
