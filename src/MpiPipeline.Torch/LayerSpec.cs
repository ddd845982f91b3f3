using System.Text;

namespace MpiPipeline.Torch;

/// <summary>
/// One layer of a model; <see cref="ModelZoo"/> builds lists of them and a <see cref="Stage"/> is built from a slice
/// of such a list. Kinds and arguments (defaults in brackets):
/// <list type="bullet">
/// <item><c>linear in out</c> (with bias; needs a flat input)</item>
/// <item><c>conv2d in_channels out_channels kernel [stride 1] [padding 0]</c> (square kernel, with bias)</item>
/// <item><c>relu</c>, <c>tanh</c>, <c>gelu</c>, <c>flatten</c> (everything after the batch dimension into one)</item>
/// <item><c>maxpool2d kernel [stride kernel] [padding 0]</c>, <c>avgpool2d</c> alike</item>
/// <item><c>dropout [percent dropped, 50]</c> (an integer percentage: 20 means p = 0.2)</item>
/// <item><c>batchnorm [features]</c>: BatchNorm1d on flat inputs, BatchNorm2d on images; statistics per micro-batch</item>
/// <item><c>residual</c> with a <see cref="Body"/>: <c>body(x) + x</c>, the body keeping the shape (<see cref="Residual"/>)</item>
/// <item><c>torchscript</c> with a <see cref="Script"/>: one part of a module saved by PyTorch (<see cref="TorchScriptModel"/>);
/// a stage holds consecutive parts of one file and nothing else</item>
/// </list>
/// A residual block is one element of the list, so a list can be cut anywhere into pipeline stages.
/// </summary>
public sealed record LayerSpec(string Kind, params long[] Args)
{
    /// <summary>The layers inside a residual block (empty for every other kind).</summary>
    public IReadOnlyList<LayerSpec> Body { get; init; } = [];

    /// <summary>Where a <c>torchscript</c> layer comes from (null for every other kind).</summary>
    public ScriptPart? Script { get; init; }

    /// <summary>A residual block <c>x + body(x)</c>.</summary>
    public static LayerSpec Residual(params LayerSpec[] body) => new("residual") { Body = body };

    /// <summary>Part <paramref name="part"/> of a TorchScript module.</summary>
    public static LayerSpec FromScript(ScriptPart part) => new(TorchScriptModel.LayerKind, part.Index) { Script = part };

    /// <summary>Equal kind, arguments, body and script part (by content: a record would compare the arrays by reference).</summary>
    public bool Equals(LayerSpec? other) =>
        other is not null && Kind == other.Kind && Args.AsSpan().SequenceEqual(other.Args) && Body.SequenceEqual(other.Body) &&
        Script == other.Script;

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

        hash.Add(Script);
        return hash.ToHashCode();
    }

    public override string ToString()
    {
        var text = new StringBuilder();
        Append(text, this);
        return text.ToString();
    }

    /// <summary>The layer spec text of mpp_stage_create: <c>linear 784 256;relu;residual{linear 64 64;relu}</c>.</summary>
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
    }
}
