using System.Numerics;

namespace MpiPipeline.Exchange.Compression;

/// <summary>
/// <c>--compress ecq:S[,d,alpha,beta]</c>: error-compensated quantized SGD, Wu, Huang, Huang and Zhang, ICML 2018,
/// Section 3 (Algorithm 1). Worker p at step t, with h_p^(0) = 0:
/// <code>
///   g~_p^(t) = Q_s(g_p^(t) + alpha h_p^(t))                   quantize the compensated gradient
///   h_p^(t+1) = beta h_p^(t) + (g_p^(t) - g~_p^(t))            accumulate the error, decayed by beta
/// </code>
/// The error accumulated is g - g~, the local gradient's, not u - g~ with u = g + alpha h: unrolled,
/// h_p^(t) = sum_{t' &lt; t} beta^(t-1-t') (g_p^(t') - g~_p^(t')), the paper's definition of the accumulated
/// quantization error. With alpha = beta the two forms coincide (u - g~ = g - g~ + alpha h); alpha = beta = 1 is
/// the classic error feedback of 1-bit SGD. That is unstable with this unbiased but noisy quantizer: the paper's
/// analysis (Section 4) needs lambda = alpha^2 gamma + (beta - alpha)^2 &lt; 1, gamma bounding the quantizer's relative
/// variance, E||Q(u) - u||^2 &lt;= gamma ||u||^2, here QSGD's min(d/s^2, sqrt(d)/s) (5.7 at s = 4, d = 512; a cnn
/// run with alpha = beta = 1 diverged within 33 steps). The defaults spend half of that budget on the feedback gain,
/// alpha^2 gamma = 1/2, and give the decay the rest up to lambda = <see cref="DefaultLambda"/>:
/// alpha = min(1, sqrt(1/(2 gamma))), beta = min(1, alpha + sqrt(lambda - alpha^2 gamma)); at s = 4, d = 512 that is
/// alpha 0.30, beta 0.97, and plain error feedback (1, 1) once s is large. The decay is what carries the error over
/// steps: at alpha = beta = 0.30 the error fed back fades within a few steps and the cnn ended ~1 point below fp32;
/// with beta near 1 it is within the seed spread (bench/results/ecq-tuning.md).
/// <para>Cited by section and algorithm, not equation number: the full text was not among the sources reachable when
/// the citation was last checked (abstract and introduction only).</para>
/// </summary>
public sealed class EcqCompressor : IGradientCompressor, ILevelCodeComparison
{
    public const string Usage = "ecq:S[,d,alpha,beta]";

    public static CompressorRegistration Registration { get; } = new("ecq", Usage,
        $"ECQ-SGD: QSGD's quantizer on g + alpha h, h <- beta h + (g - Q); defaults d {QsgdCompressor.DefaultBucketSize}, alpha = min(1, sqrt(1/(2 gamma))), beta = min(1, alpha + sqrt({DefaultLambda} - alpha^2 gamma)) (beta = alpha when only alpha is given), gamma = min(d/S^2, sqrt(d)/S)",
        (arguments, context) =>
        {
            var n = CompressorRegistry.Numbers(Usage, arguments, 4);
            var levels = CompressorRegistry.Whole(Usage, arguments, "S (levels)", n[0], 1, BucketQuantizer.MaxLevels);
            var bucket = n.Length > 1 ? CompressorRegistry.Whole(Usage, arguments, "d (bucket size)", n[1], 1, 1 << 24) : QsgdCompressor.DefaultBucketSize;
            var alpha = n.Length > 2 ? n[2] : DefaultCompensation(levels, bucket);
            var beta = n.Length > 3 ? n[3] : n.Length > 2 ? alpha : DefaultDecay(levels, bucket);
            if (alpha is < 0 or > 1e3)
            {
                throw CompressorRegistry.Usage(Usage, arguments, "alpha must be in [0, 1000]");
            }

            if (beta is < 0 or > 1)
            {
                throw CompressorRegistry.Usage(Usage, arguments, "beta must be in [0, 1]");
            }

            return new EcqCompressor(new BucketQuantizer(levels, bucket), (float)alpha, (float)beta, context);
        });

    /// <summary>The default lambda = alpha^2 gamma + (beta - alpha)^2: under the paper's bound of 1, with a margin.</summary>
    public const double DefaultLambda = 0.95;

    /// <summary>gamma = min(d/s^2, sqrt(d)/s): QSGD's bound on the quantizer's relative variance.</summary>
    public static double VarianceBound(int levels, int bucketSize) =>
        Math.Min((double)bucketSize / ((double)levels * levels), Math.Sqrt(bucketSize) / levels);

    /// <summary>alpha = min(1, sqrt(1/(2 gamma))): the feedback gain takes alpha^2 gamma = 1/2 of lambda's budget.</summary>
    public static double DefaultCompensation(int levels, int bucketSize) =>
        Math.Min(1, Math.Sqrt(1 / (2 * VarianceBound(levels, bucketSize))));

    /// <summary>beta = min(1, alpha + sqrt(lambda - alpha^2 gamma)) with the default alpha and lambda = <see cref="DefaultLambda"/>.</summary>
    public static double DefaultDecay(int levels, int bucketSize)
    {
        var alpha = DefaultCompensation(levels, bucketSize);
        var gain = alpha * alpha * VarianceBound(levels, bucketSize);
        return Math.Min(1, alpha + Math.Sqrt(Math.Max(0, DefaultLambda - gain)));
    }

    private readonly CompressorContext context;
    private readonly BitWriter writer = new();
    private float[] scales = [];
    private int[] levels = [];
    private float[] compensated = [];
    private float[] error = [];

    public EcqCompressor(BucketQuantizer quantizer, float alpha, float beta, CompressorContext context)
    {
        Quantizer = quantizer;
        Alpha = alpha;
        Beta = beta;
        this.context = context;
    }

    public BucketQuantizer Quantizer { get; }

    public long PerCoordinateCodeBytes { get; private set; }

    public float Alpha { get; }

    public float Beta { get; }

    /// <summary>h_p: the accumulated quantization error after the last <see cref="Encode"/> (empty before the first).</summary>
    public ReadOnlySpan<float> Error => error;

    public string Spec => FormattableString.Invariant($"ecq:{Quantizer.Levels},{Quantizer.BucketSize},{Alpha},{Beta}");

    public ReadOnlySpan<float> Residual => error;

    public void RestoreResidual(ReadOnlySpan<float> residual)
    {
        Allocate(residual.Length);
        residual.CopyTo(error);
    }

    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> gradient, long step) => Encode(gradient, 0, gradient.Length, step);

    /// <summary>The recursion on one bucket g = g_p[offset ..]: it reads and updates only that bucket's slice of h_p.</summary>
    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> bucket, int offset, int length, long step)
    {
        if (error.Length != length)
        {
            Allocate(length);                           // h_p^(0) = 0
        }

        var h = error.AsSpan(offset, bucket.Length);
        var u = compensated.AsSpan(offset, bucket.Length);
        var bucketLevels = levels.AsSpan(offset, bucket.Length);
        var bucketScales = scales.AsSpan(0, Quantizer.BucketCount(bucket.Length));
        Compensate(bucket, Alpha, h, u);                                                                                  // u = g + alpha h
        Quantizer.Quantize(u, BucketQuantizer.SeedFor(context.Seed, context.Rank, step), bucketScales, bucketLevels, offset); // g~ = Q_s(u)
        Quantizer.AccumulateError(bucketScales, bucketLevels, bucket, Beta, h);                                           // h <- beta h + (g - g~)
        var payload = QuantizedCodec.Encode(bucketScales, bucketLevels, Quantizer.BucketSize, writer, out var perCoordinateBits);
        PerCoordinateCodeBytes += QuantizedCodec.ScaleBytes(bucketScales.Length) + ((perCoordinateBits + 7) / 8);
        return payload;
    }

    public void DecodeAdd(ReadOnlySpan<byte> payload, Span<float> sum) => QuantizedCodec.DecodeAdd(payload, Quantizer, sum);

    /// <summary>u = g + alpha h; per element alpha h then the sum, each rounded to float: the vector lanes give the scalar form's bits.</summary>
    private static void Compensate(ReadOnlySpan<float> gradient, float alpha, ReadOnlySpan<float> error, Span<float> compensated)
    {
        var width = Vector<float>.Count;
        var alphaVector = new Vector<float>(alpha);
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i + width <= gradient.Length; i += width)
            {
                (new Vector<float>(gradient.Slice(i, width)) + (alphaVector * new Vector<float>(error.Slice(i, width)))).CopyTo(compensated.Slice(i, width));
            }
        }

        for (; i < gradient.Length; i++)
        {
            compensated[i] = gradient[i] + (alpha * error[i]);
        }
    }

    private void Allocate(int n)
    {
        error = new float[n];
        compensated = new float[n];
        levels = new int[n];
        scales = new float[Quantizer.BucketCount(n)];
    }
}
