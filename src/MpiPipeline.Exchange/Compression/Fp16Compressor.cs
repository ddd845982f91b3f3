using System.Runtime.InteropServices;

namespace MpiPipeline.Exchange.Compression;

/// <summary><c>--compress fp16</c>: each coordinate cast to IEEE half precision (round to nearest even), 16 bits each.</summary>
public sealed class Fp16Compressor : IGradientCompressor
{
    public static CompressorRegistration Registration { get; } = new("fp16", "fp16", "each coordinate cast to half precision: 2x",
        (arguments, _) => arguments is null ? new Fp16Compressor() : throw CompressorRegistry.Usage("fp16", arguments, "takes no arguments"));

    private Half[] buffer = [];

    public string Spec => "fp16";

    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> gradient, long step) => Encode(gradient, 0, gradient.Length, step);

    public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> bucket, int offset, int length, long step)
    {
        if (buffer.Length < bucket.Length)
        {
            buffer = new Half[bucket.Length];
        }

        for (var i = 0; i < bucket.Length; i++)
        {
            buffer[i] = (Half)bucket[i];
        }

        return MemoryMarshal.AsBytes(buffer.AsSpan(0, bucket.Length));
    }

    public void DecodeAdd(ReadOnlySpan<byte> payload, Span<float> sum)
    {
        var halves = MemoryMarshal.Cast<byte, Half>(payload);
        for (var i = 0; i < sum.Length; i++)
        {
            sum[i] += (float)halves[i];
        }
    }
}
