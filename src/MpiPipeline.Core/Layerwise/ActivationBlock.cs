namespace MpiPipeline.Layerwise;

/// <summary>
/// The shape of one sample of an activation as the layer-wise engine cuts it: channels (or features) x rows x columns;
/// a flat activation is features x 1 x 1 and not an image (it has no height to split).
/// </summary>
internal readonly record struct ActivationShape(int Channels, int Rows, int Columns, bool IsImage)
{
    /// <summary>From a sample shape as the bridge gives it: [features] or [channels, height, width].</summary>
    public static ActivationShape Of(IReadOnlyList<int> sampleShape) => sampleShape.Count switch
    {
        1 => new(sampleShape[0], 1, 1, false),
        3 => new(sampleShape[0], sampleShape[1], sampleShape[2], true),
        _ => throw new InvalidOperationException($"internal: the layer-wise engine cuts flat or image activations, not [{string.Join(", ", sampleShape)}]"),
    };

    /// <summary>The bridge's sample shape of a block of <paramref name="channels"/> x <paramref name="rows"/> of this activation.</summary>
    public int[] SampleShape(int channels, int rows) => IsImage ? [channels, rows, Columns] : [channels];
}

/// <summary>
/// A box of a batch's activation: samples [S0, S1), channels [C0, C1), rows [R0, R1), every column. A rank holds one
/// (its output block) and needs one (its input block); the elements a transfer moves are the intersections. The
/// elements of a block are stored sample-major, then channel, row, column: the bridge's layout of a tensor of that box.
/// </summary>
internal readonly record struct ActivationBlock(int S0, int S1, int C0, int C1, int R0, int R1)
{
    public int Samples => S1 - S0;

    public int Channels => C1 - C0;

    public int Rows => R1 - R0;

    public bool IsEmpty => Samples <= 0 || Channels <= 0 || Rows <= 0;

    /// <summary>Elements of the block, <paramref name="columns"/> to a row.</summary>
    public long Elements(int columns) => IsEmpty ? 0 : (long)Samples * Channels * Rows * columns;

    /// <summary>The common box of two blocks (empty when they do not meet).</summary>
    public ActivationBlock Intersect(ActivationBlock other) => new(
        Math.Max(S0, other.S0), Math.Min(S1, other.S1), Math.Max(C0, other.C0), Math.Min(C1, other.C1),
        Math.Max(R0, other.R0), Math.Min(R1, other.R1));

    public bool Contains(ActivationBlock inner) =>
        inner.IsEmpty || (inner.S0 >= S0 && inner.S1 <= S1 && inner.C0 >= C0 && inner.C1 <= C1 && inner.R0 >= R0 && inner.R1 <= R1);

    /// <summary>Part <paramref name="k"/> of <paramref name="ways"/> of [0, length): contiguous, floor(k length / ways) on.</summary>
    public static (int Start, int End) Part(int length, int ways, int k) => ((int)((long)k * length / ways), (int)((long)(k + 1) * length / ways));

    /// <summary>
    /// Copies the elements of <paramref name="box"/> (inside both blocks) from <paramref name="source"/>, laid out as
    /// <paramref name="from"/>, into <paramref name="target"/>, laid out as <paramref name="to"/>; with
    /// <paramref name="add"/> it adds them (a gradient's partial sums meeting).
    /// </summary>
    public static void Copy(ReadOnlySpan<float> source, ActivationBlock from, Span<float> target, ActivationBlock to, ActivationBlock box,
        int columns, bool add = false)
    {
        if (box.IsEmpty)
        {
            return;
        }

        // Whole rows of one channel are contiguous in both layouts; when the box has every row of both blocks, so are
        // its channels of one sample, and with every channel too, its samples. The widest run counts: a flat activation
        // (features x 1 x 1) copied a channel at a time was one float per call, milliseconds for a 4096-wide layer.
        var allRows = box.R0 == from.R0 && box.R1 == from.R1 && box.R0 == to.R0 && box.R1 == to.R1;
        var allChannels = allRows && box.C0 == from.C0 && box.C1 == from.C1 && box.C0 == to.C0 && box.C1 == to.C1;
        var channelsPerRun = allRows ? box.Channels : 1;
        var samplesPerRun = allChannels ? box.Samples : 1;
        var run = checked(samplesPerRun * channelsPerRun * box.Rows * columns);
        for (var s = box.S0; s < box.S1; s += samplesPerRun)
        {
            for (var c = box.C0; c < box.C1; c += channelsPerRun)
            {
                var source0 = (((long)(s - from.S0) * from.Channels + (c - from.C0)) * from.Rows + (box.R0 - from.R0)) * columns;
                var target0 = (((long)(s - to.S0) * to.Channels + (c - to.C0)) * to.Rows + (box.R0 - to.R0)) * columns;
                var input = source.Slice((int)source0, run);
                var output = target.Slice((int)target0, run);
                if (add)
                {
                    Add(input, output);
                }
                else
                {
                    input.CopyTo(output);
                }
            }
        }
    }

    /// <summary>output += input, a vector at a time.</summary>
    private static void Add(ReadOnlySpan<float> input, Span<float> output)
    {
        var i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            var inputs = System.Runtime.InteropServices.MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(input);
            var outputs = System.Runtime.InteropServices.MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(output);
            for (var v = 0; v < inputs.Length; v++)
            {
                outputs[v] += inputs[v];
            }

            i = inputs.Length * System.Numerics.Vector<float>.Count;
        }

        for (; i < input.Length; i++)
        {
            output[i] += input[i];
        }
    }

    public override string ToString() => $"samples [{S0}, {S1}) channels [{C0}, {C1}) rows [{R0}, {R1})";
}
