using System.Diagnostics;

namespace MpiPipeline.Dicod;

/// <summary>
/// The one-rank baselines on problem (1): greedy coordinate descent (the paper's CD: one argmax over all K (T - L + 1)
/// coordinates per update), LGCD (the same with M sub-segments of 2L - 1, one greedy choice in each in turn) and FISTA
/// (Beck and Teboulle 2009: proximal gradient with Nesterov's momentum, step 1/Lipschitz). The clocks cover the
/// whole solve, beta's initialisation included; the curves are computed off the clock.
/// </summary>
internal static class SequentialSolvers
{
    /// <summary>Greedy CD (M = 1) or LGCD (M sub-segments), until max |Delta Z| &lt;= tol or <paramref name="maxUpdates"/>.</summary>
    public static SolverRun CoordinateDescent(CscProblem problem, double tol, int subSegments, long maxUpdates, string name)
    {
        var clock = Stopwatch.StartNew();
        var segment = new Segment(problem, 0, problem.ActivationLength);
        var chooser = new LocallyGreedy(segment, subSegments, problem.L - 1);
        var log = new List<UpdateRecord>();
        while (!chooser.Passive && log.Count < maxUpdates)
        {
            if (chooser.Step(tol) is var (k, t, dz))
            {
                log.Add(new UpdateRecord(clock.Elapsed.TotalSeconds, k, t, dz));
            }
        }

        var seconds = clock.Elapsed.TotalSeconds;
        return new SolverRun(name, segment.Z, log.Count, seconds, chooser.Passive, ConvergenceCurve.Replay(problem, log));
    }

    /// <summary>
    /// FISTA: Z_{i+1} = Sh(Y_i + (1/L_f) D^T (X - D Y_i), lambda / L_f), then Y_{i+1} = Z_{i+1} + (t_i - 1)/t_{i+1}
    /// (Z_{i+1} - Z_i), t_{i+1} = (1 + sqrt(1 + 4 t_i^2)) / 2; L_f = ||D||_2^2 by power iteration. Stops when no
    /// coordinate moved more than tol in an iteration, or after <paramref name="maxIterations"/>. F is evaluated
    /// every iteration with the clock paused.
    /// </summary>
    public static SolverRun Fista(CscProblem problem, double tol, int maxIterations)
    {
        var clock = Stopwatch.StartNew();
        var n = problem.ActivationLength;
        var size = problem.K * n;
        var lipschitz = 1.01 * LargestEigenvalue(problem, iterations: 50);
        var z = new double[size];
        var y = new double[size];
        var previous = new double[size];
        var gradient = new double[size];
        var momentum = 1.0;
        var curve = new List<CurvePoint> { new(0.0, 0, problem.Objective(z)) };
        var converged = false;
        var iteration = 0;
        while (iteration < maxIterations && !converged)
        {
            iteration++;
            // D^T (X - D Y): beta of Y without its own-coordinate term.
            problem.BetaFromResidual(problem.Residual(y), [], 0, n, gradient);
            Array.Copy(z, previous, size);
            var largestMove = 0.0;
            for (var i = 0; i < size; i++)
            {
                z[i] = CscProblem.SoftThreshold(y[i] + (gradient[i] / lipschitz), problem.Lambda / lipschitz);
                largestMove = Math.Max(largestMove, Math.Abs(z[i] - previous[i]));
            }

            var nextMomentum = (1.0 + Math.Sqrt(1.0 + (4.0 * momentum * momentum))) / 2.0;
            var factor = (momentum - 1.0) / nextMomentum;
            for (var i = 0; i < size; i++)
            {
                y[i] = z[i] + (factor * (z[i] - previous[i]));
            }

            momentum = nextMomentum;
            converged = largestMove <= tol;
            clock.Stop();
            curve.Add(new CurvePoint(clock.Elapsed.TotalSeconds, iteration, problem.Objective(z)));
            clock.Start();
        }

        return new SolverRun("fista", z, iteration, clock.Elapsed.TotalSeconds, converged, curve);
    }

    /// <summary>The largest eigenvalue of D^T D (D the convolution operator Z -> sum Z_k * D_k), by power iteration.</summary>
    private static double LargestEigenvalue(CscProblem problem, int iterations)
    {
        var n = problem.ActivationLength;
        var v = new double[problem.K * n];
        var random = new Data.SplitMix64(0x5EED);
        for (var i = 0; i < v.Length; i++)
        {
            v[i] = ((random.NextUInt64() >> 11) * (1.0 / (1UL << 53))) - 0.5;
        }

        var eigenvalue = 0.0;
        var image = new double[v.Length];
        var zero = new CscProblem(problem.K, problem.L, problem.P, problem.T, 0.0, new double[problem.P * problem.T], problem.D);
        for (var it = 0; it < iterations; it++)
        {
            var norm = Math.Sqrt(CscProblem.Dot(v, v));
            for (var i = 0; i < v.Length; i++)
            {
                v[i] /= norm;
            }

            // With X = 0 the residual is -D v, so beta (without the own term) is -D^T D v.
            zero.BetaFromResidual(zero.Residual(v), [], 0, n, image);
            eigenvalue = -CscProblem.Dot(v, image);
            for (var i = 0; i < v.Length; i++)
            {
                v[i] = -image[i];
            }
        }

        return eigenvalue;
    }
}
