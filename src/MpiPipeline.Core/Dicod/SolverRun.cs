namespace MpiPipeline.Dicod;

/// <summary>One coordinate update as a solver made it: when (seconds on the run's clock), which coordinate, by how much.</summary>
internal readonly record struct UpdateRecord(double Seconds, int K, int T, double Dz);

/// <summary>A point of a convergence curve: F(Z) after <paramref name="Updates"/> updates (or iterations), at a time.</summary>
internal sealed record CurvePoint(double Seconds, long Updates, double Objective);

/// <summary>What a solver gives back: full activations (K x (T - L + 1)), its counts, its clock and its curve.</summary>
internal sealed record SolverRun(string Solver, double[] Z, long Updates, double Seconds, bool Converged, IReadOnlyList<CurvePoint> Curve);

/// <summary>
/// The objective along a solver's updates without re-solving anything: the updates replayed in time order on a
/// residual R = X - sum Z * D, with ||R||^2 kept up to date per update (an update at (k, t0) changes R only on
/// [t0, t0 + L) of each channel) and the l1 term alongside. F is recorded at about <paramref name="points"/> update
/// counts spaced evenly in log scale, and after the last update, off the solvers' clocks.
/// </summary>
internal static class ConvergenceCurve
{
    public static IReadOnlyList<CurvePoint> Replay(CscProblem problem, IReadOnlyList<UpdateRecord> updates, int points = 200)
    {
        var n = problem.ActivationLength;
        var z = new double[problem.K * n];
        var r = (double[])problem.X.Clone();
        var squared = CscProblem.Dot(r, r);
        var l1 = 0.0;
        var curve = new List<CurvePoint> { new(0.0, 0, 0.5 * squared) };
        var next = 1.0;
        var growth = Math.Pow(Math.Max(2, updates.Count), 1.0 / points);
        for (var i = 0; i < updates.Count; i++)
        {
            var (seconds, k, t0, dz) = updates[i];
            var index = (k * n) + t0;
            l1 += Math.Abs(z[index] + dz) - Math.Abs(z[index]);
            z[index] += dz;
            for (var p = 0; p < problem.P; p++)
            {
                var atom = problem.D.AsSpan(((k * problem.P) + p) * problem.L, problem.L);
                var row = r.AsSpan((p * problem.T) + t0, problem.L);
                // ||r - dz d||^2 - ||r||^2 = -2 dz <r, d> + dz^2 ||d||^2
                squared += (-2.0 * dz * CscProblem.Dot(row, atom)) + (dz * dz * CscProblem.Dot(atom, atom));
                CscProblem.AddScaled(row, -dz, atom);
            }

            if (i + 1 >= next || i == updates.Count - 1)
            {
                curve.Add(new CurvePoint(seconds, i + 1, (0.5 * squared) + (problem.Lambda * l1)));
                next = Math.Max(next * growth, i + 2);
            }
        }

        return curve;
    }
}
