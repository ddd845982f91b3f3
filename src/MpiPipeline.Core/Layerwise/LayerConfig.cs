using System.Globalization;

namespace MpiPipeline.Layerwise;

/// <summary>
/// How one layer is split over the R ranks of a layer-wise plan (OptCNN's parallel configuration): degrees along the
/// sample (batch), output-channel and, for a convolution, height dimensions, whose product is R: every layer uses every
/// rank. Data parallel is (R, 1, 1) on every layer; model parallel is (1, R, 1) on the layers that have channels.
/// Written <c>n4c1h1</c> (sample 4, channel 1, height 1).
/// <para>
/// What a configuration means, for the search and the engine alike: it is the layout of the layer's output activation
/// and, for a layer with parameters, the split of its parameters. The output (batch, channels or features, height,
/// width) is cut into contiguous blocks: dimension 0 <see cref="Sample"/> ways, dimension 1 <see cref="Channel"/> ways,
/// dimension 2 (images only) <see cref="Height"/> ways; rank r holds block (s, c, h) with
/// r = (s * Channel + c) * Height + h. A linear or conv layer split c ways along channels holds 1/c of its output
/// features (weights and bias rows) and needs its whole input along features/channels; a conv split along height
/// computes its rows from its input rows plus a halo of kernel/2 rows from its neighbours. Parameters are replicated
/// over the sample and height degrees, and their gradients summed over those replicas once per step. Degrees must
/// divide the dimension they split; a residual block takes sample-only configurations (Channel = Height = 1).
/// </para>
/// </summary>
internal readonly record struct LayerConfig(int Sample, int Channel, int Height)
{
    /// <summary>The ranks the layer uses: the product of the three degrees.</summary>
    public int Ranks => Sample * Channel * Height;

    public static LayerConfig DataParallel(int ranks) => new(ranks, 1, 1);

    public static LayerConfig ModelParallel(int ranks) => new(1, ranks, 1);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"n{Sample}c{Channel}h{Height}");

    /// <summary>Reads <c>n2c2h1</c> (each degree at least 1); the message names the text when it is not one.</summary>
    public static LayerConfig Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim().ToLowerInvariant();
        var degrees = new int[3];
        var position = 0;
        foreach (var (letter, index) in new[] { ('n', 0), ('c', 1), ('h', 2) })
        {
            if (position >= trimmed.Length || trimmed[position] != letter)
            {
                throw Bad(text);
            }

            var start = ++position;
            while (position < trimmed.Length && char.IsAsciiDigit(trimmed[position]))
            {
                position++;
            }

            if (!int.TryParse(trimmed.AsSpan(start, position - start), NumberStyles.None, CultureInfo.InvariantCulture, out degrees[index])
                || degrees[index] < 1)
            {
                throw Bad(text);
            }
        }

        if (position != trimmed.Length)
        {
            throw Bad(text);
        }

        return new LayerConfig(degrees[0], degrees[1], degrees[2]);
    }

    private static InputException Bad(string text) =>
        new($"'{text}' is not a layer configuration: write nScHh with degrees of at least 1, e.g. n4c1h1 (sample 4, channel 1, height 1)");
}
