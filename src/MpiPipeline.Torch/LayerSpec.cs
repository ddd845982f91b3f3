using System.Text;

namespace MpiPipeline.Torch;

/// <summary>
/// One layer of a model; <see cref="ModelZoo"/> builds lists of them and a <see cref="Stage"/> is built from a slice
/// of such a list. Kinds and arguments (defaults in brackets):
/// <list type="bullet">
/// <item><c>linear in out</c> (with bias; needs a flat input)</item>
/// <item><c>conv2d in_channels out_channels kernel [stride 1] [padding 0] [groups 1] [bias 1]</c> (square kernel;
/// groups must divide both channel counts; bias 0 leaves the bias out, as before a BatchNorm)</item>
/// <item><c>relu</c>, <c>tanh</c>, <c>gelu</c>, <c>sigmoid</c>, <c>flatten</c> (everything after the batch dimension
/// into one)</item>
/// <item><c>maxpool2d kernel [stride kernel] [padding 0]</c>, <c>avgpool2d</c> alike</item>
/// <item><c>adaptiveavgpool2d out_height [out_width out_height]</c>: averages each channel down to that size whatever
/// the input's (1 1: global average pooling)</item>
/// <item><c>dropout [percent dropped, 50]</c> (an integer percentage: 20 means p = 0.2)</item>
/// <item><c>batchnorm [features]</c>: BatchNorm1d on flat inputs, BatchNorm2d on images; statistics per micro-batch,
/// running statistics (<see cref="Stage.BufferLength"/>) averaged over data-parallel replicas before each evaluation</item>
/// <item><c>layernorm [last]</c>: LayerNorm over the whole sample, or with an argument (which must equal the last
/// dimension) over the last dimension only; with its elementwise affine parameters</item>
/// <item><c>residual</c> with a <see cref="Body"/>: <c>body(x) + x</c>, the body keeping the shape; with a
/// <see cref="Shortcut"/> <c>body(x) + shortcut(x)</c>, both giving the same shape (a downsampling block)
/// (<see cref="Residual(LayerSpec[])"/>, <see cref="ResidualWithShortcut"/>)</item>
/// <item><c>torchscript</c> with a <see cref="Script"/>: one part of a module saved by PyTorch (<see cref="TorchScriptModel"/>);
/// a stage holds consecutive parts of one file and nothing else</item>
/// </list>
/// A residual block is one element of the list, so a list can be cut anywhere into pipeline stages.
/// </summary>
public sealed record LayerSpec(string Kind, params long[] Args)
{
    /// <summary>The layers inside a residual block (empty for every other kind).</summary>
    public IReadOnlyList<LayerSpec> Body { get; init; } = [];

    /// <summary>The layers of a residual block's shortcut branch (empty: the identity).</summary>
    public IReadOnlyList<LayerSpec> Shortcut { get; init; } = [];

    /// <summary>Where a <c>torchscript</c> layer comes from (null for every other kind).</summary>
    public ScriptPart? Script { get; init; }

    /// <summary>A residual block <c>x + body(x)</c>.</summary>
    public static LayerSpec Residual(params LayerSpec[] body) => new("residual") { Body = body };

    /// <summary>A residual block <c>body(x) + shortcut(x)</c>: a block that changes the shape (stride, channels).</summary>
    public static LayerSpec ResidualWithShortcut(IReadOnlyList<LayerSpec> body, IReadOnlyList<LayerSpec> shortcut) =>
        new("residual") { Body = body, Shortcut = shortcut };

    /// <summary>Part <paramref name="part"/> of a TorchScript module.</summary>
    public static LayerSpec FromScript(ScriptPart part) => new(TorchScriptModel.LayerKind, part.Index) { Script = part };

    /// <summary>Equal kind, arguments, body, shortcut and script part (by content: a record would compare the arrays by reference).</summary>
    public bool Equals(LayerSpec? other) =>
        other is not null && Kind == other.Kind && Args.AsSpan().SequenceEqual(other.Args) && Body.SequenceEqual(other.Body)
        && Shortcut.SequenceEqual(other.Shortcut) && Script == other.Script;

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Kind);
        foreach (var arg in Args)
        {
            hash.Add(arg);
        }

        foreach (var layer in Body)
        {
            hash.Add(layer);
        }

        hash.Add(Shortcut.Count);
        foreach (var layer in Shortcut)
        {
            hash.Add(layer);
        }

        hash.Add(Script);
        return hash.ToHashCode();
    }

    public override string ToString()
    {
        var text = new StringBuilder();
        Append(text, this);
        return text.ToString();
    }

    /// <summary>The layer spec text of mpp_stage_create: <c>linear 784 256;relu;residual{linear 64 64;relu}</c>, a shortcut
    /// in a second pair of braces: <c>residual{conv2d 16 32 3 2 1;relu}{conv2d 16 32 1 2}</c>.</summary>
    internal static string Format(IReadOnlyList<LayerSpec> layers)
    {
        var text = new StringBuilder();
        AppendList(text, layers);
        return text.ToString();
    }

    /// <summary>Checks what the text format cannot carry; everything else is checked by the bridge against the shapes.</summary>
    internal static void Validate(IReadOnlyList<LayerSpec> layers, string where = "layer ")
    {
        for (var i = 0; i < layers.Count; i++)
        {
            var layer = layers[i] ?? throw Invalid($"{where}{i} is null");
            if (string.IsNullOrEmpty(layer.Kind) || !layer.Kind.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            {
                throw Invalid($"{where}{i}: layer kind '{layer.Kind}' is not a name (letters, digits, '_', '-')");
            }

            if (layer.Args is null)
            {
                throw Invalid($"{where}{i} ({layer.Kind}): null argument array");
            }

            Validate(layer.Body ?? [], $"{where}{i}.");
            Validate(layer.Shortcut ?? [], $"{where}{i}.shortcut.");
            if (layer.Shortcut is { Count: > 0 } && (layer.Body is not { Count: > 0 }))
            {
                throw Invalid($"{where}{i} ({layer.Kind}): a shortcut without a body");
            }
        }
    }

    private static TorchException Invalid(string message) => new("LayerSpec", BridgeStatus.InvalidArgument, message);

    private static void AppendList(StringBuilder text, IReadOnlyList<LayerSpec> layers)
    {
        for (var i = 0; i < layers.Count; i++)
        {
            if (i > 0)
            {
                text.Append(';');
            }

            Append(text, layers[i]);
        }
    }

    private static void Append(StringBuilder text, LayerSpec layer)
    {
        if (layer.Script is { } part)
        {
            // Names the part, not the file: the checkpoint compares these texts, and the model name carries the file.
            text.Append(layer.Kind).Append('[').Append(part.Name).Append(']');
            return;
        }

        text.Append(layer.Kind);
        foreach (var arg in layer.Args)
        {
            text.Append(' ').Append(arg);
        }

        if (layer.Body.Count > 0)
        {
            text.Append('{');
            AppendList(text, layer.Body);
            text.Append('}');
        }

        if (layer.Shortcut.Count > 0)
        {
            text.Append('{');
            AppendList(text, layer.Shortcut);
            text.Append('}');
        }
    }
}
