namespace MpiPipeline.Scaling;

/// <summary>A measured time: <paramref name="Seconds"/> for one operation on <paramref name="Bytes"/> among <paramref name="Ranks"/> ranks.</summary>
internal sealed record TimingSample(int Ranks, long Bytes, double Seconds);

/// <summary>How the ranks' concurrent messages share the network.</summary>
internal enum LinkTopology
{
    /// <summary>
    /// Every rank sends on a link of its own (a cluster, one rank per node behind a non-blocking switch; shared memory,
    /// where each pair of ranks copies in parallel): n ranks sending at once each get the full bandwidth.
    /// </summary>
    PerRank,

    /// <summary>
    /// One link carries every rank's traffic (one shaped loopback, `mpipipe scaling --network`): n ranks sending at
    /// once share its bandwidth, so a step in which every rank sends m bytes takes n m beta.
    /// </summary>
    Shared,
}

/// <summary>Latency-bandwidth parameters: time = alpha + bytes * beta for one message; <see cref="Bandwidth"/> = 1 / beta.</summary>
/// <param name="Alpha">Latency, seconds.</param>
/// <param name="Beta">Inverse bandwidth, seconds per byte.</param>
internal sealed record AlphaBeta(double Alpha, double Beta)
{
    /// <summary>Bytes per second (infinite when beta is 0).</summary>
    public double Bandwidth => Beta > 0 ? 1 / Beta : double.PositiveInfinity;

    /// <summary>One message of <paramref name="bytes"/>: alpha + bytes * beta.</summary>
    public double PointToPoint(double bytes) => Alpha + bytes * Beta;

    /// <summary>
    /// Ring Allreduce of <paramref name="bytes"/> on <paramref name="ranks"/> ranks: a reduce-scatter and an allgather,
    /// each n-1 steps in which every rank sends S/n bytes at once: 2(n-1) alpha + 2(n-1)/n * S * beta with a link per
    /// rank; 0 on one rank.
    /// </summary>
    /// <remarks>
    /// On a <see cref="LinkTopology.Shared"/> link the n concurrent messages of a step queue behind each other, so a
    /// step moves n S/n = S bytes through the one link: 2(n-1) alpha + 2(n-1) * S * beta. Every bandwidth-optimal
    /// Allreduce (ring, Rabenseifner's reduce-scatter + allgather, which the MPIs pick for large messages) puts the same
    /// 2(n-1) S bytes on the link in total, so the bandwidth term holds whichever one runs. Fitting the per-rank form to
    /// a shared link instead would absorb the factor n of the benchmarked rank count into beta and mispredict every other
    /// rank count by n_bench / n (a 2-rank fit predicts half the time at 4 ranks).
    /// </remarks>
    public double RingAllreduce(int ranks, double bytes, LinkTopology topology = LinkTopology.PerRank) =>
        ranks <= 1 ? 0 : 2.0 * (ranks - 1) * Alpha + RingBytesFactor(ranks, topology) * bytes * Beta;

    /// <summary>Bytes on the busiest link per byte of Allreduce payload: 2(n-1)/n per rank, 2(n-1) on a shared link.</summary>
    private static double RingBytesFactor(int ranks, LinkTopology topology) =>
        topology == LinkTopology.Shared ? 2.0 * (ranks - 1) : 2.0 * (ranks - 1) / ranks;

    /// <summary>The bandwidth lower bound of any Allreduce: every rank must send 2(n-1)/n * S bytes: 2(n-1)/n * S / B.</summary>
    public double AllreduceBandwidthBound(int ranks, double bytes) =>
        ranks <= 1 ? 0 : 2.0 * (ranks - 1) / ranks * bytes * Beta;

    /// <summary>Fits alpha and beta of one message (time = alpha + S beta) to ping-pong timings.</summary>
    public static FitResult<AlphaBeta> FitPointToPoint(IReadOnlyList<TimingSample> samples) =>
        Fit(samples, s => [1.0, s.Bytes], s => new AlphaBeta(s[0], s[1]));

    /// <summary>
    /// Fits alpha and beta of the ring model (time = 2(n-1) alpha + 2(n-1)/n S beta, or 2(n-1) S beta on a shared link)
    /// to Allreduce timings.
    /// </summary>
    public static FitResult<AlphaBeta> FitRingAllreduce(IReadOnlyList<TimingSample> samples, LinkTopology topology = LinkTopology.PerRank)
    {
        if (samples.Any(s => s.Ranks < 2))
        {
            throw new ArgumentException("an Allreduce timing on one rank carries no communication", nameof(samples));
        }

        return Fit(samples, s => [2.0 * (s.Ranks - 1), RingBytesFactor(s.Ranks, topology) * s.Bytes], s => new AlphaBeta(s[0], s[1]));
    }

    private static FitResult<AlphaBeta> Fit(IReadOnlyList<TimingSample> samples, Func<TimingSample, double[]> regressors, Func<double[], AlphaBeta> make)
    {
        var theta = LeastSquares.FitRelative([.. samples.Select(regressors)], [.. samples.Select(s => s.Seconds)]);
        return new FitResult<AlphaBeta>(make(theta), samples.Count);
    }
}

/// <summary>A fitted model and how many points it was fitted to.</summary>
internal sealed record FitResult<T>(T Model, int Points);

/// <summary>
/// Linear least squares y ~ sum_k theta_k x_k with non-negative coefficients, minimizing the sum of squared
/// <em>relative</em> residuals ((prediction - y) / y)^2, i.e. weights 1/y^2: timings from 8 B to megabytes span
/// orders of magnitude, and an unweighted fit would ignore the small ones (and so the latency).
/// </summary>
internal static class LeastSquares
{
    /// <summary>theta for rows <paramref name="x"/> (each of the same length k) and positive targets <paramref name="y"/>.</summary>
    public static double[] FitRelative(IReadOnlyList<double[]> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count || x.Count == 0)
        {
            throw new ArgumentException($"need as many targets as rows, at least one (rows {x.Count}, targets {y.Count})");
        }

        if (y.Any(v => !(v > 0) || !double.IsFinite(v)))
        {
            throw new ArgumentException("targets must be positive and finite (times)", nameof(y));
        }

        var k = x[0].Length;
        var weights = y.Select(v => 1 / (v * v)).ToArray();
        // Non-negative least squares by elimination of the active set: with k <= 3 trying the subsets is exact and cheap.
        double[]? best = null;
        var bestCost = double.PositiveInfinity;
        for (var mask = 1; mask < 1 << k; mask++)
        {
            var columns = Enumerable.Range(0, k).Where(c => (mask & (1 << c)) != 0).ToArray();
            var theta = Solve(x, y, weights, columns);
            if (theta is null || theta.Any(t => t < 0))
            {
                continue;
            }

            var cost = 0.0;
            for (var i = 0; i < x.Count; i++)
            {
                var prediction = 0.0;
                for (var c = 0; c < k; c++)
                {
                    prediction += theta[c] * x[i][c];
                }

                cost += weights[i] * (prediction - y[i]) * (prediction - y[i]);
            }

            if (cost < bestCost * (1 - 1e-12))
            {
                bestCost = cost;
                best = theta;
            }
        }

        return best ?? new double[k];
    }

    /// <summary>Weighted normal equations on the chosen columns (scaled to unit size first); null when singular.</summary>
    private static double[]? Solve(IReadOnlyList<double[]> x, IReadOnlyList<double> y, double[] w, int[] columns)
    {
        var m = columns.Length;
        var scale = columns.Select(c => x.Max(row => Math.Abs(row[c]))).ToArray();
        if (scale.Any(s => s == 0))
        {
            return null;
        }

        var a = new double[m, m + 1];
        for (var i = 0; i < x.Count; i++)
        {
            for (var r = 0; r < m; r++)
            {
                var xr = x[i][columns[r]] / scale[r];
                for (var c = 0; c < m; c++)
                {
                    a[r, c] += w[i] * xr * x[i][columns[c]] / scale[c];
                }

                a[r, m] += w[i] * xr * y[i];
            }
        }

        // Gaussian elimination with partial pivoting; a pivot this small against the diagonal means collinear columns.
        var size = Enumerable.Range(0, m).Max(r => Math.Abs(a[r, r]));
        for (var col = 0; col < m; col++)
        {
            var pivot = col;
            for (var r = col + 1; r < m; r++)
            {
                if (Math.Abs(a[r, col]) > Math.Abs(a[pivot, col]))
                {
                    pivot = r;
                }
            }

            if (!(Math.Abs(a[pivot, col]) > 1e-9 * size))
            {
                return null;
            }

            for (var c = 0; c <= m; c++)
            {
                (a[col, c], a[pivot, c]) = (a[pivot, c], a[col, c]);
            }

            for (var r = 0; r < m; r++)
            {
                if (r == col)
                {
                    continue;
                }

                var factor = a[r, col] / a[col, col];
                for (var c = col; c <= m; c++)
                {
                    a[r, c] -= factor * a[col, c];
                }
            }
        }

        var theta = new double[x[0].Length];
        for (var r = 0; r < m; r++)
        {
            theta[columns[r]] = a[r, m] / a[r, r] / scale[r];
        }

        return theta.All(double.IsFinite) ? theta : null;
    }
}
