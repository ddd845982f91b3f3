namespace MpiPipeline.Dicod;

/// <summary>
/// The convolutional sparse coding problem of Moreau, Oudre, Vayatis (ICML 2018), their problem (1):
/// <code>
/// min_Z  F(Z) = 1/2 || X - sum_k Z_k * D_k ||_2^2 + lambda sum_k || Z_k ||_1
/// </code>
/// for a signal X of P channels and length T, K atoms D_k of P channels and length L, and activations Z_k of length
/// T - L + 1 (the "valid" support: every atom placed at t lies inside the signal). Arrays are flat and row-major:
/// X[p, u] at p T + u, D[k, p, s] at (k P + p) L + s, Z[k, t] at k (T - L + 1) + t.
/// </summary>
internal sealed class CscProblem
{
    public CscProblem(int atoms, int atomLength, int channels, int length, double lambda, double[] signal, double[] dictionary)
    {
        K = atoms;
        L = atomLength;
        P = channels;
        T = length;
        Lambda = lambda;
        X = signal;
        D = dictionary;
        if (signal.Length != (long)P * T || dictionary.Length != (long)K * P * L)
        {
            throw new ArgumentException($"X holds {signal.Length} values for P x T = {P} x {T}, D {dictionary.Length} for K x P x L = {K} x {P} x {L}");
        }

        NormsSquared = new double[K];
        for (var k = 0; k < K; k++)
        {
            NormsSquared[k] = Dot(D.AsSpan(k * P * L, P * L), D.AsSpan(k * P * L, P * L));
        }

        Cross = CrossCorrelations();
    }

    /// <summary>K, the number of atoms.</summary>
    public int K { get; }

    /// <summary>L, the atoms' length.</summary>
    public int L { get; }

    /// <summary>P, the channels of the signal and of every atom.</summary>
    public int P { get; }

    /// <summary>T, the signal's length.</summary>
    public int T { get; }

    /// <summary>lambda, the weight of the l1 penalty.</summary>
    public double Lambda { get; }

    /// <summary>X, P x T.</summary>
    public double[] X { get; }

    /// <summary>D, K x P x L.</summary>
    public double[] D { get; }

    /// <summary>||D_k||_2^2 for each atom.</summary>
    public double[] NormsSquared { get; }

    /// <summary>The activations' length, T - L + 1.</summary>
    public int ActivationLength => T - L + 1;

    /// <summary>
    /// The atoms' cross-correlations (D~_k * D_l)[tau] = sum_p sum_s D_k[p, s] D_l[p, s + tau], tau in -(L-1)..L-1,
    /// at ((k K + l)(2L - 1) + tau + L - 1): all the beta update needs (the paper precomputes them the same way).
    /// </summary>
    public double[] Cross { get; }

    /// <summary>The width 2L - 1 of the window an update at t0 changes beta in: t0 - L + 1 .. t0 + L - 1.</summary>
    public int Window => (2 * L) - 1;

    /// <summary>Sh(u, lambda) = sign(u) max(|u| - lambda, 0), the soft-thresholding operator.</summary>
    public static double SoftThreshold(double u, double lambda) =>
        u > lambda ? u - lambda : u < -lambda ? u + lambda : 0.0;

    /// <summary>The residual X - sum_k Z_k * D_k (P x T) of full activations <paramref name="z"/> (K x (T - L + 1)).</summary>
    public double[] Residual(ReadOnlySpan<double> z)
    {
        var n = ActivationLength;
        var r = (double[])X.Clone();
        for (var k = 0; k < K; k++)
        {
            for (var t = 0; t < n; t++)
            {
                var zk = z[(k * n) + t];
                if (zk == 0.0)
                {
                    continue;
                }

                for (var p = 0; p < P; p++)
                {
                    var atom = D.AsSpan(((k * P) + p) * L, L);
                    AddScaled(r.AsSpan((p * T) + t, L), -zk, atom);
                }
            }
        }

        return r;
    }

    /// <summary>F(Z), problem (1).</summary>
    public double Objective(ReadOnlySpan<double> z)
    {
        var r = Residual(z);
        var l1 = 0.0;
        foreach (var v in z)
        {
            l1 += Math.Abs(v);
        }

        return (0.5 * Dot(r, r)) + (Lambda * l1);
    }

    /// <summary>
    /// beta computed from scratch on the coordinates [start, start + count) of every atom, for full activations z:
    /// <code>
    /// beta_k[t] = (D~_k * (X - sum_l Z_l * D_l))[t] + Z_k[t] ||D_k||^2
    /// </code>
    /// the correlation of atom k with the residual that leaves coordinate (k, t) out, so that the coordinate's optimal
    /// value is Sh(beta_k[t], lambda) / ||D_k||^2. Written at k count + (t - start) of <paramref name="beta"/>.
    /// </summary>
    public void Beta(ReadOnlySpan<double> z, int start, int count, Span<double> beta) =>
        BetaFromResidual(Residual(z), z, start, count, beta);

    /// <summary><see cref="Beta"/> given the residual already.</summary>
    public void BetaFromResidual(ReadOnlySpan<double> residual, ReadOnlySpan<double> z, int start, int count, Span<double> beta)
    {
        var n = ActivationLength;
        for (var k = 0; k < K; k++)
        {
            for (var i = 0; i < count; i++)
            {
                var t = start + i;
                var sum = 0.0;
                for (var p = 0; p < P; p++)
                {
                    sum += Dot(D.AsSpan(((k * P) + p) * L, L), residual.Slice((p * T) + t, L));
                }

                beta[(k * count) + i] = sum + (z.IsEmpty ? 0.0 : z[(k * n) + t] * NormsSquared[k]);
            }
        }
    }

    /// <summary>lambda_max = max_{k,t} |(D~_k * X)[t]|: the smallest lambda for which Z = 0 is the solution.</summary>
    public double LambdaMax()
    {
        var n = ActivationLength;
        var beta = new double[K * n];
        BetaFromResidual(X, [], 0, n, beta);
        return beta.Max(Math.Abs);
    }

    /// <summary>sum_i a_i b_i, SIMD-wide (the inner loop of beta from scratch, of FISTA's gradient and of the residual).</summary>
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        var n = Math.Min(a.Length, b.Length);
        var width = System.Numerics.Vector<double>.Count;
        var acc = System.Numerics.Vector<double>.Zero;
        var i = 0;
        for (; i + width <= n; i += width)
        {
            acc += new System.Numerics.Vector<double>(a.Slice(i, width)) * new System.Numerics.Vector<double>(b.Slice(i, width));
        }

        var sum = System.Numerics.Vector.Sum(acc);
        for (; i < n; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    /// <summary>y += alpha x, SIMD-wide.</summary>
    public static void AddScaled(Span<double> y, double alpha, ReadOnlySpan<double> x)
    {
        var n = Math.Min(x.Length, y.Length);
        var width = System.Numerics.Vector<double>.Count;
        var i = 0;
        for (; i + width <= n; i += width)
        {
            (new System.Numerics.Vector<double>(y.Slice(i, width)) + (alpha * new System.Numerics.Vector<double>(x.Slice(i, width)))).CopyTo(y.Slice(i, width));
        }

        for (; i < n; i++)
        {
            y[i] += alpha * x[i];
        }
    }

    private double[] CrossCorrelations()
    {
        var w = Window;
        var cross = new double[K * K * w];
        for (var k = 0; k < K; k++)
        {
            for (var l = 0; l < K; l++)
            {
                for (var tau = -(L - 1); tau < L; tau++)
                {
                    var sum = 0.0;
                    for (var p = 0; p < P; p++)
                    {
                        var dk = D.AsSpan(((k * P) + p) * L, L);
                        var dl = D.AsSpan(((l * P) + p) * L, L);
                        for (var s = Math.Max(0, -tau); s < Math.Min(L, L - tau); s++)
                        {
                            sum += dk[s] * dl[s + tau];
                        }
                    }

                    cross[(((k * K) + l) * w) + tau + L - 1] = sum;
                }
            }
        }

        return cross;
    }
}
