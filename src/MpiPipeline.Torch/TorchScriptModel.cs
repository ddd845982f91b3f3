using System.Runtime.InteropServices;

namespace MpiPipeline.Torch;

/// <summary>
/// Part <see cref="Index"/> of the TorchScript module in <see cref="File"/>: a child of its top-level
/// <c>nn.Sequential</c> (<see cref="Sequential"/>), or the whole module (index 0). <see cref="Name"/>: the child's
/// index and type (<c>0 Conv2d</c>), or the module's type.
/// </summary>
public sealed record ScriptPart(string File, int Index, string Name, bool Sequential);

/// <summary>
/// <c>--model torchscript:FILE</c>: a module written in PyTorch and saved with <c>torch.jit.script(model).save(FILE)</c>,
/// loaded by the bridge with libtorch's <c>torch::jit::load</c>. Its layers (<see cref="LayerSpec.FromScript"/>) are the
/// children of a top-level <c>nn.Sequential</c>, so a pipeline cuts it where PyTorch's own Sequential would run from
/// one child to the next; any other module is one layer, one stage. Its parameters start at the file's values (the
/// seed does not touch them), identical on every rank that loads the same file.
/// <para>
/// TorchScript keeps no input shape: the data's is checked by running one sample through the module, and its output
/// per sample must be one score per class of the data.
/// </para>
/// </summary>
public static class TorchScriptModel
{
    /// <summary>The model name's prefix; the rest of the name is the file, as written (case and ':' kept).</summary>
    public const string Prefix = "torchscript:";

    internal const string LayerKind = "torchscript";

    /// <summary>True when <paramref name="model"/> names a TorchScript file.</summary>
    public static bool Names(string model) => model.TrimStart().StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>The file of a <c>torchscript:FILE</c> name; fails when it gives none or the file does not exist.</summary>
    public static string File(string model)
    {
        var file = model.TrimStart()[Prefix.Length..];
        if (file.Length == 0)
        {
            throw new InputException($"model '{model}': give the TorchScript file after '{Prefix}' (torchscript:model.pt)");
        }

        if (!System.IO.File.Exists(file))
        {
            throw new InputException($"--model {Prefix}FILE: the TorchScript file {file} does not exist " +
                "(write one in PyTorch with torch.jit.script(model).save(path))");
        }

        return file;
    }

    /// <summary>
    /// The layers of the module in the file of <paramref name="model"/> for samples of <paramref name="geometry"/>: one
    /// per child of a top-level nn.Sequential, else one. Fails (an <see cref="InputException"/> naming the file) when
    /// the file is not TorchScript, when the module does not take the data's samples (naming their shape and
    /// libtorch's reason), when it does not give one score per class, or when it has nothing to train.
    /// </summary>
    public static IReadOnlyList<LayerSpec> Build(string model, SampleGeometry geometry)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        var file = File(model);
        var info = Inspect(file, geometry.Shape);
        if (info.Output is not [var scores] || scores != geometry.Classes)
        {
            throw new InputException($"model '{model}': the module gives {SampleGeometry.Format(info.Output)} values per sample for the " +
                $"data's {SampleGeometry.Format(geometry.Shape)} samples, but the data has {geometry.Classes} classes: its output must be " +
                $"{geometry.Classes} class scores (logits; the loss applies the softmax)");
        }

        if (info.Parameters == 0)
        {
            throw new InputException($"model '{model}': the module has no trainable parameters (a module frozen with " +
                "torch.jit.freeze keeps its weights as constants; save the scripted module before freezing)");
        }

        return [.. info.Parts.Select((name, i) => LayerSpec.FromScript(new ScriptPart(file, i, name, info.Sequential)))];
    }

    /// <summary>
    /// Why <paramref name="layers"/> cannot be cut into <paramref name="stages"/> pipeline stages when they are one
    /// TorchScript module that is not an nn.Sequential; null otherwise.
    /// </summary>
    public static string? WhyNotCut(IReadOnlyList<LayerSpec> layers, int stages) =>
        stages > 1 && layers is [{ Script: { Sequential: false } part }]
            ? $"the TorchScript module in {part.File} ({part.Name}) is not an nn.Sequential at its top level, so it is one pipeline " +
              "stage: use --stages 1, or script an nn.Sequential (its children are where a pipeline cuts it)"
            : null;

    /// <summary>The file, first part and part count of a stage made of <paramref name="layers"/>, all consecutive parts of one module.</summary>
    internal static (string File, int First, int Count) StageParts(IReadOnlyList<LayerSpec> layers)
    {
        var first = layers[0].Script;
        for (var i = 0; i < layers.Count; i++)
        {
            if (layers[i].Script is not { } part || first is null || part.File != first.File || part.Index != first.Index + i)
            {
                throw new TorchException("Stage.Create", BridgeStatus.InvalidArgument,
                    $"layer {i} ({layers[i]}): a stage of a TorchScript module holds consecutive parts of one file and no other layers");
            }
        }

        return (first!.File, first.Index, layers.Count);
    }

    private sealed record Info(string[] Parts, bool Sequential, long Parameters, int[] Output);

    private static unsafe Info Inspect(string file, int[] sampleShape)
    {
        BridgeLibrary.EnsureLoaded();
        var shape = Array.ConvertAll(sampleShape, d => (long)d);
        var output = stackalloc long[16];
        int parts = 0, sequential = 0, outputRank = 0;
        long parameters = 0;
        nint names = 0;
        fixed (long* s = shape)
        {
            var status = NativeMethods.mpp_script_inspect(file, s, shape.Length, &parts, &sequential, &parameters, output, 16, &outputRank, &names);
            if (status == (int)BridgeStatus.InvalidArgument)
            {
                // The bridge's message names the file and says what is wrong with it.
                throw new InputException($"--model {Prefix}FILE: {Marshal.PtrToStringUTF8(NativeMethods.mpp_last_error())}");
            }

            TorchException.Check(status);
        }

        var lines = (Marshal.PtrToStringUTF8(names) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var dims = new int[Math.Min(outputRank, 16)];
        for (var i = 0; i < dims.Length; i++)
        {
            dims[i] = checked((int)output[i]);
        }

        return new Info(lines, sequential != 0, parameters, dims);
    }
}
