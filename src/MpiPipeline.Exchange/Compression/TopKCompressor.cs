using System.Buffers.Binary;
using System.Globalization;

namespace MpiPipeline.Exchange.Compression;

/// <summary>
/// <c>--compress topk:R</c>: top-k sparsification with error feedback (Strom 2015; Aji and Heafield 2017; Stich et al.
/// 2018's memory): worker p keeps a residual e_p (zero at the start) and at each step sends the k = ceil(R n) largest
/// coordinates in magnitude of u_p = g_p + e_p; the rest becomes the residual, e_p &lt;- u_p - topk(u_p), so nothing
/// is dropped, only delayed. Ties at the k-th magnitude go to the lowest indices, so exactly k are kept.
/// <para>Wire: k pairs of a little-endian int32 index (ascending) and the fp32 value, 64 bits per kept coordinate:
/// 64 R bits per coordinate (0.64 at R = 1%, 50x), with no length word beyond the Allgather's size.</para>
/// </summary>
public sealed class TopKCompressor : IGradientCompressor
{
    public const string Usage = "topk:R";

    private const int PairBytes = sizeof(int) + sizeof(float);

    public static CompressorRegistration Registration { get; } = new("topk", Usage,
        "top-k with error feedback: the R (0 < R <= 1) largest fraction of g + e in magnitude sent as (index, fp32) pairs, the rest into the residual e",
        (arguments, _) =>
        {
            var n = CompressorRegistry.Numbers(Usage, arguments, 1);
            if (n[0] is <= 0 or > 1)
            {
                throw CompressorRegistry.Usage(Usage, arguments, "R (the fraction kept) must be in (0, 1]");
            }

            return new TopKCompressor(n[0]);
        });

    private float[] residual = [];
    private float[] magnitudes = [];
    private byte[] payload = [];

    public TopKCompressor(double fraction)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fraction);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(fraction, 1);
        Fraction = fraction;
    }

    /// <summary>R: the fraction of coordinates sent per step.</summary>
    public double Fraction { get; }

    public string Spec => "topk:" + Fraction.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>e_p: what was not sent so far, after the last <see cref="Encode"/> (empty before the first).</summary>
    public ReadOnlySpan<float> Residual => residual;

    /// <summary>k for <paramref name="length"/> coordinates: ceil(R n), at least 1.</summary>
    public int Kept(int length) => length == 0 ? 0 : Math.Clamp((int)Math.Ceiling(Fraction * length), 1, length);

    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> gradient, long step) => Encode(gradient, 0, gradient.Length, step);

    /// <summary>Top-k of one bucket: k = ceil(R n_bucket) of its coordinates, indices relative to the bucket, over its
    /// slice of the residual (the whole gradient is the one bucket at offset 0).</summary>
    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> bucket, int offset, int length, long step)
    {
        var n = bucket.Length;
        Buffers.Fit(ref residual, length);               // e_p^(0) = 0
        Buffers.AtLeast(ref magnitudes, n);
        var k = Kept(n);
        Buffers.AtLeast(ref payload, k * PairBytes);
        var e = residual.AsSpan(offset, n);
        for (var i = 0; i < n; i++)
        {
            e[i] += bucket[i];                           // u = g + e, held in e's buffer
            magnitudes[i] = Math.Abs(e[i]);
        }

        if (k == 0)
        {
            return [];
        }

        // The k-th largest magnitude: all above it are kept, then the first ones equal to it until k.
        var threshold = Select(magnitudes.AsSpan(0, n), n - k);
        var above = 0;
        foreach (var value in e)
        {
            if (Math.Abs(value) > threshold)
            {
                above++;
            }
        }

        var ties = k - above;
        var written = 0;
        for (var i = 0; i < n && written < k; i++)
        {
            var magnitude = Math.Abs(e[i]);
            if (magnitude > threshold || (magnitude == threshold && ties-- > 0))
            {
                var pair = payload.AsSpan(written++ * PairBytes, PairBytes);
                BinaryPrimitives.WriteInt32LittleEndian(pair, i);
                BinaryPrimitives.WriteSingleLittleEndian(pair[sizeof(int)..], e[i]);
                e[i] = 0;                                // e <- u - topk(u): a sent coordinate leaves nothing behind
            }
        }

        return payload.AsSpan(0, k * PairBytes);
    }

    public void DecodeAdd(ReadOnlySpan<byte> payload, Span<float> sum)
    {
        if (payload.Length % PairBytes != 0)
        {
            throw new InvalidDataException($"top-k payload of {payload.Length} bytes is not whole (index, value) pairs");
        }

        for (var offset = 0; offset < payload.Length; offset += PairBytes)
        {
            var index = BinaryPrimitives.ReadInt32LittleEndian(payload[offset..]);
            if ((uint)index >= (uint)sum.Length)
            {
                throw new InvalidDataException($"top-k payload: index {index} outside the {sum.Length} coordinates");
            }

            sum[index] += BinaryPrimitives.ReadSingleLittleEndian(payload[(offset + sizeof(int))..]);
        }
    }

    /// <summary>The value of rank <paramref name="order"/> (0: the smallest) of <paramref name="values"/>, which it reorders:
    /// quickselect with a median-of-three pivot, O(n) expected, where sorting would be O(n log n) every step.</summary>
    internal static float Select(Span<float> values, int order)
    {
        var (low, high) = (0, values.Length - 1);
        while (low < high)
        {
            var middle = low + ((high - low) / 2);
            var pivot = Median(values[low], values[middle], values[high]);
            var (i, j) = (low, high);
            while (i <= j)
            {
                while (values[i] < pivot)
                {
                    i++;
                }

                while (values[j] > pivot)
                {
                    j--;
                }

                if (i <= j)
                {
                    (values[i], values[j]) = (values[j], values[i]);
                    i++;
                    j--;
                }
            }

            if (order <= j)
            {
                high = j;
            }
            else if (order >= i)
            {
                low = i;
            }
            else
            {
                return values[order];
            }
        }

        return values[order];
    }

    private static float Median(float a, float b, float c) => Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));
}
