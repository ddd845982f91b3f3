using MpiPipeline.Torch;

namespace MpiPipeline.Layerwise;

/// <summary>What a layer needs of its input under its own configuration (the contract of <see cref="LayerConfig"/>).</summary>
internal enum InputNeed
{
    /// <summary>
    /// Every input channel (feature) of its sample block: linear and conv, each output channel reading every input
    /// channel; a conv split along height also reads its window's rows beyond its own (the halo).
    /// </summary>
    AllChannels,

    /// <summary>
    /// The input under its own output block: the same samples and channels, the rows its window covers (elementwise
    /// layers, pools, batchnorm); flatten's channel block of the image is its block of features.
    /// </summary>
    SameBlock,

    /// <summary>Whole samples (a residual block: one node, sample splits only).</summary>
    WholeSamples,
}

/// <summary>
/// One layer kind's rule: which of the output's dimensions a configuration may split beyond the samples, and what the
/// layer then needs of its input. <see cref="Why"/> says why, for <c>plan --explain</c> and the README.
/// </summary>
internal sealed record LayerKind(string Name, bool SplitsChannels, bool SplitsHeight, InputNeed Need, string Why);

/// <summary>
/// Every layer kind the layer-wise planner knows, one row each: the registry the enumeration of configurations reads.
/// Sample splits are open to every kind. Channel splits: the layers whose output channels (features) are independent
/// of each other given the input. Height splits: layers on images whose output rows depend on a window of input rows.
/// </summary>
internal static class LayerKinds
{
    public static IReadOnlyList<LayerKind> All { get; } =
    [
        new("linear", SplitsChannels: true, SplitsHeight: false, InputNeed.AllChannels,
            "sample and output features: each rank holds 1/c of the weight rows and needs every input feature"),
        new("conv2d", SplitsChannels: true, SplitsHeight: true, InputNeed.AllChannels,
            "sample, output channels and rows: 1/c of the filters, every input channel, its rows plus a halo of the kernel's reach"),
        new("relu", true, true, InputNeed.SameBlock, "elementwise: any block of the output needs the same block of the input"),
        new("tanh", true, true, InputNeed.SameBlock, "elementwise"),
        new("gelu", true, true, InputNeed.SameBlock, "elementwise"),
        new("dropout", true, true, InputNeed.SameBlock, "elementwise"),
        new("maxpool2d", true, true, InputNeed.SameBlock, "per channel; rows through the window (no halo when stride = kernel)"),
        new("avgpool2d", true, true, InputNeed.SameBlock, "per channel; rows through the window"),
        new("flatten", SplitsChannels: true, SplitsHeight: false, InputNeed.SameBlock,
            "features are channel-major, so a block of 1/c of the image's channels is a contiguous block of 1/c of the features; a row block is not contiguous"),
        new("batchnorm", SplitsChannels: true, SplitsHeight: false, InputNeed.SameBlock,
            "statistics per channel over the samples (per rank, as in data parallel) and the whole image: no row split"),
        new("residual", SplitsChannels: false, SplitsHeight: false, InputNeed.WholeSamples,
            "one node: its body runs whole on each rank's samples (sample splits only)"),
    ];

    public static IReadOnlyList<string> Names { get; } = [.. All.Select(k => k.Name)];

    public static LayerKind Of(LayerSpec layer) =>
        All.FirstOrDefault(k => k.Name == layer.Kind)
        ?? throw new InputException($"layer-wise planning does not know layer kind '{layer.Kind}' (it knows {string.Join(", ", Names)})");
}

/// <summary>The valid configurations of a layer.</summary>
internal static class LayerConfigs
{
    /// <summary>
    /// Every (sample, channel, height) with product <paramref name="ranks"/> that the layer's kind allows and whose
    /// degrees divide what they split: the global batch, the output channels (features; for flatten also the input
    /// image's channels), the output rows. Ordered by sample degree, then channel degree, both descending: data
    /// parallel first, which the search keeps among equal costs.
    /// </summary>
    public static IReadOnlyList<LayerConfig> For(LayerNode node, int batch, int ranks)
    {
        var kind = node.Kind;
        var configs = new List<LayerConfig>();
        foreach (var n in Divisors(ranks).Reverse())
        {
            if (batch % n != 0)
            {
                continue;
            }

            foreach (var c in Divisors(ranks / n).Reverse())
            {
                var h = ranks / n / c;
                var channelOk = c == 1 || (kind.SplitsChannels && node.OutputShape[0] % c == 0
                    && (kind.Name != "flatten" || node.InputShape[0] % c == 0));
                var heightOk = h == 1 || (kind.SplitsHeight && node.IsImage && node.OutputShape[1] % h == 0);
                if (channelOk && heightOk)
                {
                    configs.Add(new LayerConfig(n, c, h));
                }
            }
        }

        return configs;
    }

    private static IEnumerable<int> Divisors(int value) => Enumerable.Range(1, value).Where(d => value % d == 0);
}
