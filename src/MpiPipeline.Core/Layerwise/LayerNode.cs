using MpiPipeline.Torch;

namespace MpiPipeline.Layerwise;

/// <summary>
/// One element of a model's layer list (a residual block is one) with the per-sample shapes around it: images are
/// (channels, rows, columns), flat data (features). The search and the cost model work on a list of these.
/// </summary>
internal sealed record LayerNode(int Index, LayerSpec Spec, int[] InputShape, int[] OutputShape)
{
    /// <summary>The layer's rule (which dimensions it may split, what input it needs).</summary>
    public LayerKind Kind => LayerKinds.Of(Spec);

    /// <summary>Trainable parameters (weights and biases; a batchnorm's running statistics are not).</summary>
    public long Parameters => Spec is { Kind: "batchnorm", Args.Length: 0 } ? 2L * InputShape[0] : CountParameters(Spec);

    public bool IsImage => OutputShape.Length == 3;

    /// <summary>The layer list of <paramref name="model"/> for <paramref name="geometry"/>, each with its shapes.</summary>
    public static IReadOnlyList<LayerNode> Of(string model, SampleGeometry geometry) => Of(ModelZoo.Build(model, geometry), geometry.Shape);

    public static IReadOnlyList<LayerNode> Of(IReadOnlyList<LayerSpec> layers, int[] sampleShape)
    {
        var nodes = new List<LayerNode>(layers.Count);
        var shape = sampleShape;
        for (var i = 0; i < layers.Count; i++)
        {
            var output = OutputOf(layers[i], shape, i);
            nodes.Add(new LayerNode(i, layers[i], shape, output));
            shape = output;
        }

        return nodes;
    }

    /// <summary>The output shape of one layer, as libtorch computes it (floor division for convs and pools).</summary>
    internal static int[] OutputOf(LayerSpec layer, int[] input, int index)
    {
        long Arg(int i, long fallback) => layer.Args.Length > i ? layer.Args[i] : fallback;
        switch (layer.Kind)
        {
            case "linear" when input.Length == 1 && input[0] == layer.Args[0]:
                return [checked((int)layer.Args[1])];
            case "conv2d" when input is [var channels, _, _] && channels == layer.Args[0]:
            {
                var (k, s, p) = (layer.Args[2], Arg(3, 1), Arg(4, 0));
                return [checked((int)layer.Args[1]), Window(input[1], k, s, p), Window(input[2], k, s, p)];
            }

            case "maxpool2d" or "avgpool2d" when input.Length == 3:
            {
                var (k, s, p) = (layer.Args[0], Arg(1, layer.Args[0]), Arg(2, 0));
                return [input[0], Window(input[1], k, s, p), Window(input[2], k, s, p)];
            }

            case "flatten":
                return [input.Aggregate(1, (product, d) => checked(product * d))];
            case "relu" or "tanh" or "gelu" or "dropout" or "batchnorm" or "residual":
                return input;
            default:
                throw new InputException(
                    $"layer {index} ({layer}): layer-wise planning does not know this layer kind on samples of {SampleGeometry.Format(input)} " +
                    $"(it knows {string.Join(", ", LayerKinds.Names)})");
        }
    }

    /// <summary>Output rows (or columns) of a window of <paramref name="k"/> with stride and padding.</summary>
    private static int Window(int size, long k, long stride, long padding) => checked((int)((size + 2 * padding - k) / stride + 1));

    private static long CountParameters(LayerSpec layer) => layer.Kind switch
    {
        "linear" => layer.Args[0] * layer.Args[1] + layer.Args[1],
        "conv2d" => layer.Args[0] * layer.Args[1] * layer.Args[2] * layer.Args[2] + layer.Args[1],
        "batchnorm" when layer.Args.Length > 0 => 2 * layer.Args[0],
        "residual" => layer.Body.Sum(CountParameters),
        _ => 0,
    };
}
