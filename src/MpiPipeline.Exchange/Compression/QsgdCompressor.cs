namespace MpiPipeline.Exchange.Compression;

/// <summary>
/// <c>--compress qsgd:S[,d]</c>: QSGD (Alistarh et al., 2017), each rank's gradient quantized by <see cref="BucketQuantizer"/>
/// with no error compensation: g~_p = Q_s(g_p), unbiased. ECQ-SGD's ablation (the paper compares against it).
/// </summary>
public sealed class QsgdCompressor : IGradientCompressor, ILevelCodeComparison
{
    public const string Usage = "qsgd:S[,d]";

    public const int DefaultBucketSize = 512;

    public static CompressorRegistration Registration { get; } = new("qsgd", Usage,
        $"QSGD: buckets of d (default {DefaultBucketSize}) scaled by their l2 norm, S non-zero levels, stochastic rounding, run-length coded",
        (arguments, context) =>
        {
            var n = CompressorRegistry.Numbers(Usage, arguments, 2);
            var levels = CompressorRegistry.Whole(Usage, arguments, "S (levels)", n[0], 1, BucketQuantizer.MaxLevels);
            var bucket = n.Length > 1 ? CompressorRegistry.Whole(Usage, arguments, "d (bucket size)", n[1], 1, 1 << 24) : DefaultBucketSize;
            return new QsgdCompressor(new BucketQuantizer(levels, bucket), context);
        });

    private readonly CompressorContext context;
    private readonly BitWriter writer = new();
    private float[] scales = [];
    private int[] levels = [];

    public QsgdCompressor(BucketQuantizer quantizer, CompressorContext context)
    {
        Quantizer = quantizer;
        this.context = context;
    }

    public BucketQuantizer Quantizer { get; }

    public long PerCoordinateCodeBytes { get; private set; }

    public string Spec => $"qsgd:{Quantizer.Levels},{Quantizer.BucketSize}";

    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> gradient, long step) => Encode(gradient, 0, gradient.Length, step);

    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> bucket, int offset, int length, long step)
    {
        Buffers.AtLeast(ref scales, Quantizer.BucketCount(length));
        Buffers.AtLeast(ref levels, length);
        var bucketScales = scales.AsSpan(0, Quantizer.BucketCount(bucket.Length));
        var bucketLevels = levels.AsSpan(offset, bucket.Length);
        Quantizer.Quantize(bucket, BucketQuantizer.SeedFor(context.Seed, context.Rank, step), bucketScales, bucketLevels, offset);
        var payload = QuantizedCodec.Encode(bucketScales, bucketLevels, Quantizer.BucketSize, writer, out var perCoordinateBits);
        PerCoordinateCodeBytes += QuantizedCodec.ScaleBytes(bucketScales.Length) + ((perCoordinateBits + 7) / 8);
        return payload;
    }

    public void DecodeAdd(ReadOnlySpan<byte> payload, Span<float> sum) => QuantizedCodec.DecodeAdd(payload, Quantizer, sum);
}

internal static class Buffers
{
    /// <summary>Reallocates <paramref name="array"/> when its length is not <paramref name="length"/> (the gradient's size is fixed in a run).</summary>
    public static void Fit<T>(ref T[] array, int length)
    {
        if (array.Length != length)
        {
            array = new T[length];
        }
    }

    /// <summary>Reallocates <paramref name="array"/> when it holds fewer than <paramref name="length"/> elements
    /// (buckets of different sizes share it).</summary>
    public static void AtLeast<T>(ref T[] array, int length)
    {
        if (array.Length < length)
        {
            array = new T[length];
        }
    }
}
