namespace MpiPipeline.Dicod;

/// <summary>
/// Coordinate descent's state on the coordinates [Start, Start + Length) of the activations' time axis, for every
/// atom: Z, beta and the change each coordinate's update would make, Delta Z = Z' - Z. One rank of DICOD owns one
/// segment; the sequential solvers own the whole axis. Indices inside are local (t - Start), arrays K x Length.
/// </summary>
internal sealed class Segment
{
    private readonly CscProblem problem;

    /// <summary>A segment whose Z starts at 0: beta = D~ * X there (the residual is X).</summary>
    public Segment(CscProblem problem, int start, int length)
    {
        this.problem = problem;
        Start = start;
        Length = length;
        Z = new double[problem.K * length];
        Beta = new double[problem.K * length];
        DeltaZ = new double[problem.K * length];
        problem.BetaFromResidual(problem.X, [], start, length, Beta);
        RefreshDeltaZ(0, length);
    }

    public int Start { get; }
    public int Length { get; }

    /// <summary>Z_k[t] for the segment's t (K x Length).</summary>
    public double[] Z { get; }

    /// <summary>beta_k[t] (see <see cref="CscProblem.Beta"/>) for the segment's t.</summary>
    public double[] Beta { get; }

    /// <summary>Delta Z_k[t] = Sh(beta_k[t], lambda) / ||D_k||^2 - Z_k[t]: coordinate descent's optimal step.</summary>
    public double[] DeltaZ { get; }

    public bool Contains(int t) => t >= Start && t < Start + Length;

    /// <summary>
    /// The coordinate of largest |Delta Z| among local t in [from, to), every atom: the greedy choice
    /// (k0, t0) = argmax_{k,t} |Delta Z_k[t]| restricted to one (sub-)segment, as LGCD and each DICOD worker make it.
    /// Returns the global t.
    /// </summary>
    public (int K, int T, double Dz) Select(int from, int to)
    {
        var best = -1.0;
        int bestK = 0, bestT = from;
        for (var k = 0; k < problem.K; k++)
        {
            var row = DeltaZ.AsSpan((k * Length) + from, to - from);
            for (var i = 0; i < row.Length; i++)
            {
                var a = Math.Abs(row[i]);
                if (a > best)
                {
                    best = a;
                    bestK = k;
                    bestT = from + i;
                }
            }
        }

        return (bestK, Start + bestT, DeltaZ[(bestK * Length) + bestT]);
    }

    /// <summary>
    /// Applies the update Z_k0[t0] += dz (when t0 is in this segment) and its effect on beta, which reaches only
    /// |t - t0| &lt; L:
    /// <code>
    /// beta_k[t] &lt;- beta_k[t] - (D~_k * D_k0)[t - t0] dz      for every (k, t) != (k0, t0)
    /// </code>
    /// (the paper's beta update, with the precomputed cross-correlations), then Delta Z on that window. An update at a
    /// neighbour's t0 (a DICOD message) changes only beta here. Returns the local window [lo, hi) it touched.
    /// </summary>
    public (int Lo, int Hi) Apply(int k0, int t0, double dz)
    {
        var l = problem.L;
        var lo = Math.Max(Start, t0 - l + 1) - Start;
        var hi = Math.Min(Start + Length, t0 + l) - Start;
        if (lo >= hi)
        {
            return (0, 0);
        }

        var k = problem.K;
        var w = problem.Window;
        for (var atom = 0; atom < k; atom++)
        {
            // (D~_atom * D_k0)[tau] at tau = t - t0, stored from tau = -(L - 1).
            var cross = problem.Cross.AsSpan((((atom * k) + k0) * w) + (Start + lo - t0) + l - 1, hi - lo);
            CscProblem.AddScaled(Beta.AsSpan((atom * Length) + lo, hi - lo), -dz, cross);
        }

        if (Contains(t0))
        {
            var own = (k0 * Length) + t0 - Start;
            Z[own] += dz;
            // The loop took (D~_k0 * D_k0)[0] dz = ||D_k0||^2 dz from beta_k0[t0]; the update excludes that coordinate.
            Beta[own] += dz * problem.NormsSquared[k0];
        }

        RefreshDeltaZ(lo, hi);
        return (lo, hi);
    }

    /// <summary>Delta Z = Sh(beta, lambda) / ||D_k||^2 - Z on local [lo, hi), every atom (the coordinate update Z').</summary>
    private void RefreshDeltaZ(int lo, int hi)
    {
        for (var k = 0; k < problem.K; k++)
        {
            var inverse = 1.0 / problem.NormsSquared[k];
            for (var i = (k * Length) + lo; i < (k * Length) + hi; i++)
            {
                DeltaZ[i] = (CscProblem.SoftThreshold(Beta[i], problem.Lambda) * inverse) - Z[i];
            }
        }
    }
}
