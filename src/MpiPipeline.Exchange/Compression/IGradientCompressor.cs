namespace MpiPipeline.Exchange.Compression;

/// <summary>Who is compressing: the run's seed and this rank, which with the step seed any stochastic rounding.</summary>
public readonly record struct CompressorContext(long Seed, int Rank);

/// <summary>
/// One rank's gradient compressor: it turns this rank's gradient of one step into bytes for the wire, and adds any
/// rank's bytes, decoded, into a sum. It works on the whole gradient or on one bucket of it (a contiguous range, the
/// overlapped exchange's), each bucket on its own: a quantizer's buckets and top-k's k are cut within it. A compressor
/// with error feedback (ECQ, top-k) keeps its residual inside, one value per coordinate of the whole gradient, and a
/// bucket's encode updates that bucket's slice of it; decoding is stateless, so every rank decodes every payload the
/// same way.
/// </summary>
public interface IGradientCompressor
{
    /// <summary>Its spelling for <c>--compress</c>, with every parameter made explicit (e.g. <c>ecq:4,512,1,1</c>).</summary>
    string Spec { get; }

    /// <summary>This rank's encoded <paramref name="gradient"/> (the whole of it) of <paramref name="step"/>; valid until the next call.</summary>
    ReadOnlySpan<byte> Encode(ReadOnlySpan<float> gradient, long step) => Encode(gradient, 0, gradient.Length, step);

    /// <summary>
    /// This rank's encoded <paramref name="bucket"/> of <paramref name="step"/>: coordinates [offset, offset +
    /// bucket.Length) of a gradient of <paramref name="length"/> coordinates (the residual's length); valid until the
    /// next call. The whole gradient is the bucket at offset 0 of its own length.
    /// </summary>
    ReadOnlySpan<byte> Encode(ReadOnlySpan<float> bucket, int offset, int length, long step);

    /// <summary>sum += decode(payload): <paramref name="sum"/> has the length of what was encoded (the gradient or the bucket).</summary>
    void DecodeAdd(ReadOnlySpan<byte> payload, Span<float> sum);

    /// <summary>The error-feedback residual this rank carries between steps (a checkpoint saves it); empty: none.</summary>
    ReadOnlySpan<float> Residual => [];

    /// <summary>Continues from a saved <see cref="Residual"/> (of the gradient's length; empty: none yet).</summary>
    void RestoreResidual(ReadOnlySpan<float> residual)
    {
        if (!residual.IsEmpty)
        {
            throw new InvalidOperationException($"--compress {Spec} keeps no residual, but {residual.Length} values were given");
        }
    }
}

/// <summary>A quantizing compressor that also sizes the per-coordinate code it did not choose, for the comparison in the report.</summary>
public interface ILevelCodeComparison
{
    /// <summary>Bytes its payloads would have had with per-coordinate Elias-gamma levels (same scales), summed over steps.</summary>
    long PerCoordinateCodeBytes { get; }
}
