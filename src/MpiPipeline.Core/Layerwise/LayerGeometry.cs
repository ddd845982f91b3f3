using MpiPipeline.Torch;

namespace MpiPipeline.Layerwise;

/// <summary>One layer of a layer-wise plan: the layer, its input and output activation shapes, its configuration.</summary>
internal sealed record PlannedLayer(int Index, LayerSpec Spec, ActivationShape Input, ActivationShape Output, LayerConfig Config)
{
    public override string ToString() => $"layer {Index} ({Spec})";
}

/// <summary>
/// What a <see cref="LayerConfig"/> means for one layer on one rank, in blocks of the batch's activations (the
/// LayerConfig contract): the output block the rank holds, the input block it needs to compute it, the shard of the
/// layer it builds. Pure: shapes in, blocks out; the engine and the redistribution costs both read it.
/// <para>
/// Input needs by kind: linear, all input features of its samples; conv2d, all input channels of its samples and, split
/// along height, its rows plus kernel/2 halo rows on each side (cut at the image's edges, where the conv's own padding
/// applies); relu, tanh, gelu, the same block as its output; maxpool2d/avgpool2d, its channels and k rows per output
/// row; flatten, the input channels its features come from (a channel split must divide the input channels); any other
/// layer (residual, dropout, batchnorm), the whole sample.
/// </para>
/// <para>
/// Refused (<see cref="Check"/>): degrees that do not divide the batch, the channels or the rows they split; height
/// splits of anything but conv2d (stride 1, kernel 2 padding + 1), elementwise layers and pools whose stride is their
/// kernel, without padding; channel splits of residual, dropout and batchnorm; batchnorm split along samples (its
/// batch statistics would be a shard's); a batch that the R ranks do not divide (the loss is computed R ways).
/// </para>
/// </summary>
internal static class LayerGeometry
{
    private static readonly HashSet<string> Elementwise = ["relu", "tanh", "gelu"];
    private static readonly HashSet<string> Pools = ["maxpool2d", "avgpool2d"];

    /// <summary>Rank r's (sample, channel, height) coordinates: r = (s * Channel + c) * Height + h.</summary>
    public static (int Sample, int Channel, int Height) Coordinates(LayerConfig config, int rank) =>
        (rank / (config.Channel * config.Height), rank / config.Height % config.Channel, rank % config.Height);

    /// <summary>The block of the layer's output that <paramref name="rank"/> holds, for a batch of <paramref name="batch"/>.</summary>
    public static ActivationBlock OutputBlock(PlannedLayer layer, int batch, int rank) => Block(layer.Output, layer.Config, batch, rank);

    /// <summary>The block of an activation of <paramref name="shape"/> that <paramref name="rank"/> holds when it is laid out as <paramref name="config"/>.</summary>
    public static ActivationBlock Block(ActivationShape shape, LayerConfig config, int batch, int rank)
    {
        var (s, c, h) = Coordinates(config, rank);
        var (s0, s1) = ActivationBlock.Part(batch, config.Sample, s);
        var (c0, c1) = ActivationBlock.Part(shape.Channels, config.Channel, c);
        var (r0, r1) = ActivationBlock.Part(shape.Rows, config.Height, h);
        return new(s0, s1, c0, c1, r0, r1);
    }

    /// <summary>The block of the layer's input that <paramref name="rank"/> needs to compute its output block.</summary>
    public static ActivationBlock InputBlock(PlannedLayer layer, int batch, int rank)
    {
        var output = OutputBlock(layer, batch, rank);
        var input = layer.Input;
        var kind = layer.Spec.Kind;
        var allRows = (0, input.Rows);
        var (c0, c1) = (0, input.Channels);
        var (r0, r1) = allRows;
        if (kind == "conv2d" && layer.Config.Height > 1)
        {
            var padding = (int)Arg(layer.Spec, 4, 0);
            (r0, r1) = (Math.Max(0, output.R0 - padding), Math.Min(input.Rows, output.R1 + padding));
        }
        else if (Elementwise.Contains(kind))
        {
            (c0, c1, r0, r1) = (output.C0, output.C1, output.R0, output.R1);
        }
        else if (Pools.Contains(kind))
        {
            (c0, c1) = (output.C0, output.C1);
            if (layer.Config.Height > 1)
            {
                var kernel = (int)layer.Spec.Args[0];
                (r0, r1) = (output.R0 * kernel, output.R1 * kernel);
            }
        }
        else if (kind == "flatten")
        {
            if (input.IsImage)
            {
                (c0, c1) = ActivationBlock.Part(input.Channels, layer.Config.Channel, Coordinates(layer.Config, rank).Channel);
            }
            else
            {
                (c0, c1) = (output.C0, output.C1);
            }
        }

        return new(output.S0, output.S1, c0, c1, r0, r1);
    }

    /// <summary>Rows of the stage's output for <paramref name="rank"/> and where its output block starts in them: a
    /// height-split conv computes its halo rows too (wrong ones, from a cut input) and drops them.</summary>
    public static (int Rows, int Offset) StageRows(PlannedLayer layer, int batch, int rank)
    {
        var output = OutputBlock(layer, batch, rank);
        if (layer.Spec.Kind == "conv2d" && layer.Config.Height > 1)
        {
            var input = InputBlock(layer, batch, rank);
            return (input.Rows, output.R0 - input.R0);
        }

        return (output.Rows, 0);
    }

    /// <summary>The layer as <paramref name="rank"/> builds it: a channel-split linear or conv2d with its share of the output channels.</summary>
    public static LayerSpec Shard(PlannedLayer layer, int rank)
    {
        if (layer.Config.Channel == 1 || layer.Spec.Kind is not ("linear" or "conv2d"))
        {
            return layer.Spec;
        }

        var output = OutputBlock(layer, layer.Config.Sample, rank);
        var args = layer.Spec.Args.ToArray();
        args[1] = output.Channels;
        return new LayerSpec(layer.Spec.Kind, args);
    }

    /// <summary>The block of the logits <paramref name="rank"/> computes the loss of: its 1/R of the samples, every class.</summary>
    public static ActivationBlock LossBlock(int batch, int classes, int ranks, int rank)
    {
        var (s0, s1) = ActivationBlock.Part(batch, ranks, rank);
        return new(s0, s1, 0, classes, 0, 1);
    }

    /// <summary>Whether <paramref name="layer"/> can take <paramref name="config"/> (null) or why not.</summary>
    public static string? Refusal(PlannedLayer layer, int batch)
    {
        var (config, spec, input, output) = (layer.Config, layer.Spec, layer.Input, layer.Output);
        var kind = spec.Kind;
        if (batch % config.Sample != 0)
        {
            return $"the sample degree {config.Sample} does not divide the batch {batch}";
        }

        if (config.Sample > 1 && kind == "batchnorm")
        {
            return "batchnorm takes no sample split (its batch statistics would be a shard's)";
        }

        if (config.Channel > 1)
        {
            if (!(kind is "linear" or "conv2d" or "flatten" || Elementwise.Contains(kind) || Pools.Contains(kind)))
            {
                return $"{kind} takes no channel split (only linear, conv2d, flatten, relu, tanh, gelu and the pools do)";
            }

            if (output.Channels % config.Channel != 0)
            {
                return $"the channel degree {config.Channel} does not divide its {output.Channels} output {(output.IsImage ? "channels" : "features")}";
            }

            if (kind == "flatten" && input.IsImage && input.Channels % config.Channel != 0)
            {
                return $"a flatten split {config.Channel} ways takes whole input channels, and {config.Channel} does not divide its {input.Channels}";
            }
        }

        if (config.Height > 1)
        {
            if (!output.IsImage)
            {
                return "its output is flat: only image activations split along height";
            }

            if (!(kind == "conv2d" || Elementwise.Contains(kind) || Pools.Contains(kind)))
            {
                return $"{kind} takes no height split (only conv2d, relu, tanh, gelu and the pools do)";
            }

            if (output.Rows % config.Height != 0)
            {
                return $"the height degree {config.Height} does not divide its {output.Rows} output rows";
            }

            if (kind == "conv2d" && (Arg(spec, 3, 1) != 1 || spec.Args[2] != 2 * Arg(spec, 4, 0) + 1))
            {
                return "a height-split conv2d needs stride 1 and kernel = 2 padding + 1 (its output rows are its input rows)";
            }

            if (Pools.Contains(kind) && (Arg(spec, 1, spec.Args[0]) != spec.Args[0] || Arg(spec, 2, 0) != 0))
            {
                return "a height-split pool needs stride = kernel and no padding (each output row block reads its own input rows)";
            }
        }

        return null;
    }

    /// <summary>Every layer's <see cref="Refusal"/> and the loss's split, as one InputException naming the first refused layer.</summary>
    public static void Check(IReadOnlyList<PlannedLayer> layers, int batch, int ranks, string source)
    {
        foreach (var layer in layers)
        {
            if (Refusal(layer, batch) is { } why)
            {
                throw new InputException($"{source}: {layer} is {layer.Config}, which the layer-wise engine refuses: {why}");
            }
        }

        if (batch % ranks != 0)
        {
            throw new InputException($"--batch {batch}: the layer-wise engine computes the loss on batch / R samples per rank, so R = {ranks} must divide it; try --batch {(batch / ranks + 1) * ranks}");
        }
    }

    /// <summary>
    /// The "model" plan's configuration of a layer: a channel split R ways where the layer takes one (linear, conv2d,
    /// flatten, elementwise, pools, R dividing its channels), else a sample split R ways.
    /// </summary>
    public static LayerConfig ModelParallel(PlannedLayer layer, int ranks, int batch) =>
        Refusal(layer with { Config = LayerConfig.ModelParallel(ranks) }, batch) is null ? LayerConfig.ModelParallel(ranks) : LayerConfig.DataParallel(ranks);

    private static long Arg(LayerSpec spec, int index, long fallback) => index < spec.Args.Length ? spec.Args[index] : fallback;
}
