using System.Numerics;

namespace MpiPipeline.Exchange.Compression;

/// <summary>
/// Q_s of Wu et al. (ECQ-SGD, ICML 2018, Section 3; QSGD's stochastic quantizer): the vector is cut into buckets of d
/// coordinates (the last one shorter when d does not divide it), each scaled by its own norm ||u_b||, and every
/// coordinate becomes ||u_b|| * sgn(u_i) * xi_i with xi_i in {0, 1/s, ..., 1}: for |u_i| / ||u_b|| in [l/s, (l+1)/s),
/// xi_i = (l+1)/s with probability s |u_i| / ||u_b|| - l, else l/s, so E[Q(u)] = u.
/// <para>The norm is the l2 norm. The paper allows l2 or l-infinity and uses l2 in its linear-model experiments (s = 4);
/// with l2 the ratios |u_i| / ||u_b|| are about 1/sqrt(d), so at small s most levels are 0 and the run-length code of
/// <see cref="QuantizedCodec"/> gets well under a bit per coordinate, where l-infinity (ratios near 1 for the bucket's
/// largest entries and O(1/3) typical) would leave most coordinates non-zero. The price is variance: QSGD bounds
/// E||Q(u) - u||^2 by min(d/s^2, sqrt(d)/s) ||u||^2 per bucket, which the error compensation of ECQ feeds back.</para>
/// <para>Rounding draws come from one SplitMix64 stream seeded by (seed, rank, step), draw k rounding coordinate k of
/// the whole gradient (a zero bucket skips its draws, and a gradient bucket of the overlapped exchange starts at its
/// first coordinate's draw): each draw is a function of (seed, rank, step, coordinate) alone, and a run repeats
/// exactly.</para>
/// </summary>
public sealed class BucketQuantizer
{
    /// <summary>Above this, level indices would stop being exact in float arithmetic.</summary>
    public const int MaxLevels = 1 << 24;

    public BucketQuantizer(int levels, int bucketSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(levels, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(levels, MaxLevels);
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketSize, 1);
        Levels = levels;
        BucketSize = bucketSize;
    }

    /// <summary>s: the non-zero levels.</summary>
    public int Levels { get; }

    /// <summary>d: coordinates per bucket.</summary>
    public int BucketSize { get; }

    public int BucketCount(int length) => (int)(((long)length + BucketSize - 1) / BucketSize);

    /// <summary>
    /// Q_s(u): bucket b's norm into <paramref name="scales"/>[b], coordinate i's signed level (in [-s, s]) into
    /// <paramref name="levels"/>[i]; the value it stands for is <see cref="Value"/>(scale, level).
    /// </summary>
    /// <param name="firstCoordinate">u's first coordinate in the whole gradient: its draws start there.</param>
    public void Quantize(ReadOnlySpan<float> u, ulong seed, Span<float> scales, Span<int> levels, long firstCoordinate = 0)
    {
        var random = new SplitMix64(seed);
        random.Skip(firstCoordinate);
        for (var b = 0; b < scales.Length; b++)
        {
            var start = b * BucketSize;
            var bucket = u.Slice(start, Math.Min(BucketSize, u.Length - start));
            var scale = (float)L2Norm(bucket);
            scales[b] = scale;
            var out_ = levels.Slice(start, bucket.Length);
            if (scale == 0 || !float.IsFinite(scale))
            {
                // A zero bucket has nothing to round; a non-finite one is the divergence guard's to see, as NaN levels can't be coded.
                out_.Clear();
                random.Skip(bucket.Length);
                continue;
            }

            var perUnit = Levels / scale;
            for (var i = 0; i < bucket.Length; i++)
            {
                var r = Math.Min(Math.Abs(bucket[i]) * perUnit, Levels);
                var l = (int)r;
                var up = random.NextUnit() < r - l ? 1 : 0;
                var level = Math.Min(l + up, Levels);
                // The sign without a branch: gradient signs are a coin toss, which a predictor cannot learn.
                var sign = BitConverter.SingleToInt32Bits(bucket[i]) >> 31;
                out_[i] = (level ^ sign) - sign;
            }
        }
    }

    /// <summary>The value a level stands for; the one expression encoder and decoders share, so all agree bit for bit.</summary>
    public float Value(float scale, int level) => scale * level / Levels;

    /// <summary>q = Q(u) as floats, from its scales and levels.</summary>
    public void Dequantize(ReadOnlySpan<float> scales, ReadOnlySpan<int> levels, Span<float> q)
    {
        for (var start = 0; start < q.Length; start += BucketSize)
        {
            var scale = scales[start / BucketSize];
            var end = Math.Min(start + BucketSize, q.Length);
            for (var i = start; i < end; i++)
            {
                q[i] = Value(scale, levels[i]);
            }
        }
    }

    /// <summary>
    /// error = beta error + (g - q), q = Q(u) from its scales and levels: <see cref="Dequantize"/> fused with ECQ's
    /// feedback update, one pass instead of two and no q buffer. Vectorized, it does per element the operations the
    /// scalar form does, in the same order ((scale * level) / s, then beta error + (g - q)), each rounded to float as
    /// there: IEEE makes them exact the same in a vector lane, so the residual is bit for bit the scalar one's.
    /// </summary>
    public void AccumulateError(ReadOnlySpan<float> scales, ReadOnlySpan<int> levels, ReadOnlySpan<float> gradient, float beta, Span<float> error)
    {
        var width = Vector<float>.Count;
        var s = (float)Levels;
        var sVector = new Vector<float>(s);
        var betaVector = new Vector<float>(beta);
        for (var start = 0; start < error.Length; start += BucketSize)
        {
            var scale = scales[start / BucketSize];
            var end = Math.Min(start + BucketSize, error.Length);
            var i = start;
            if (Vector.IsHardwareAccelerated)
            {
                var scaleVector = new Vector<float>(scale);
                for (; i + width <= end; i += width)
                {
                    var q = scaleVector * Vector.ConvertToSingle(new Vector<int>(levels.Slice(i, width))) / sVector;
                    var h = new Vector<float>(error.Slice(i, width));
                    var g = new Vector<float>(gradient.Slice(i, width));
                    ((betaVector * h) + (g - q)).CopyTo(error.Slice(i, width));
                }
            }

            for (; i < end; i++)
            {
                error[i] = (beta * error[i]) + (gradient[i] - Value(scale, levels[i]));
            }
        }
    }

    /// <summary>The draws' seed for (seed, rank, step): each mixed in turn, so neighbouring triples give unrelated streams.</summary>
    public static ulong SeedFor(long seed, int rank, long step) =>
        SplitMix64.Mix(SplitMix64.Mix(SplitMix64.Mix((ulong)seed) ^ (ulong)(uint)rank) ^ (ulong)step);

    private static double L2Norm(ReadOnlySpan<float> bucket)
    {
        double sum = 0;
        foreach (var x in bucket)
        {
            sum += (double)x * x;
        }

        return Math.Sqrt(sum);
    }
}

/// <summary>Steele, Lea and Flood's SplitMix64: a small, fast generator whose output function also mixes seeds.</summary>
internal struct SplitMix64(ulong state)
{
    private ulong state = state;

    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Moves past <paramref name="count"/> outputs at once: the state only ever adds the golden gamma.</summary>
    public void Skip(long count) => state += unchecked((ulong)count * 0x9E3779B97F4A7C15UL);

    public ulong Next()
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) on the 2^-24 grid: exact in float, so P(U &lt; p) = p up to 2^-24.</summary>
    public float NextUnit() => (Next() >> 40) * (1f / (1 << 24));
}
