namespace MpiPipeline.Exchange;

/// <summary>
/// One bucket: the contiguous elements [Offset, Offset + Length) of the flat gradient buffer, holding the parameters
/// FirstParameter .. FirstParameter + ParameterCount - 1 (layer order). Compressors work on a bucket at a time.
/// </summary>
public readonly record struct GradientBucket(int Offset, int Length, int FirstParameter, int ParameterCount);

/// <summary>
/// How the flat gradient buffer is cut into buckets for the overlapped exchange (PyTorch DDP's plan): the parameters
/// in reverse layer order, since backward produces the last layer's gradients first, packed greedily into buckets of
/// at most <c>capacity</c> bytes; a parameter is never split, so one larger than the capacity is a bucket alone.
/// Bucket 0 holds the last parameters. Every rank builds the same plan from the same model: the buckets' collectives
/// then match across ranks.
/// </summary>
public static class BucketPlan
{
    /// <summary>DDP's default bucket: 25 MB.</summary>
    public const double DefaultMegabytes = 25;

    /// <summary>The buckets of parameters of <paramref name="parameterLengths"/> elements (fp32, contiguous, layer order).</summary>
    public static IReadOnlyList<GradientBucket> Create(IReadOnlyList<int> parameterLengths, long capacityBytes)
    {
        ArgumentNullException.ThrowIfNull(parameterLengths);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityBytes);
        var offsets = new int[parameterLengths.Count + 1];
        for (var i = 0; i < parameterLengths.Count; i++)
        {
            offsets[i + 1] = checked(offsets[i] + parameterLengths[i]);
        }

        var buckets = new List<GradientBucket>();
        var end = parameterLengths.Count;     // the bucket being filled holds parameters [first, end)
        var first = end;
        for (var i = parameterLengths.Count - 1; i >= 0; i--)
        {
            var bytes = (long)(offsets[end] - offsets[i]) * sizeof(float);
            if (first < end && bytes > capacityBytes)
            {
                buckets.Add(new GradientBucket(offsets[first], offsets[end] - offsets[first], first, end - first));
                end = first;
            }

            first = i;
        }

        if (first < end)
        {
            buckets.Add(new GradientBucket(offsets[first], offsets[end] - offsets[first], first, end - first));
        }

        return buckets;
    }

    /// <summary>--bucket-mb in bytes; 0, a negative or a non-finite value is an <see cref="InputException"/>.</summary>
    public static long CapacityBytes(double megabytes, string flag = "--bucket-mb")
    {
        if (!(megabytes > 0) || double.IsInfinity(megabytes))
        {
            throw new InputException($"{flag} must be a positive number of megabytes (got {megabytes}); DDP's default is {DefaultMegabytes}");
        }

        return Math.Max(1, (long)Math.Round(megabytes * 1024 * 1024));
    }
}
