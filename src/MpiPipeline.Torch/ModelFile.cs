using System.Globalization;
using System.Text;

namespace MpiPipeline.Torch;

/// <summary>
/// A model file (<c>--model spec:FILE</c>): the layer list of <see cref="LayerSpec"/> as text, so that a user writes a
/// model without recompiling. One layer per line, its kind then its integer arguments separated by blanks (the kinds
/// and arguments of <see cref="LayerSpec"/>); <c>#</c> starts a comment; blank lines are skipped. A residual block
/// opens its body with <c>residual {</c> and closes it with <c>}</c>; a shortcut that changes the shape follows as
/// <c>} shortcut {</c> ... <c>}</c>; blocks nest. For example (3x32x32 images, 10 classes):
/// <code>
/// conv2d 3 16 3 1 1 1 0    # in out kernel stride padding groups bias
/// batchnorm
/// relu
/// residual {
///     conv2d 16 32 3 2 1 1 0
///     batchnorm
///     relu
///     conv2d 32 32 3 1 1 1 0
///     batchnorm
/// } shortcut {
///     conv2d 16 32 1 2 0 1 0
///     batchnorm
/// }
/// relu
/// adaptiveavgpool2d 1
/// flatten
/// linear 32 10
/// </code>
/// The file is checked here for what needs no shapes (kinds, argument counts, integers, braces), each error naming the
/// file, the line and the layer; the bridge checks the shapes when it builds the model, naming the layer by its
/// position (<c>layer 3.0</c>: the first layer of the fourth top-level layer's body).
/// </summary>
internal static class ModelFile
{
    /// <summary>The largest model file read (a layer list, not data).</summary>
    public const int MaxBytes = 4 << 20;

    /// <summary>Kind, and the argument counts it takes with their meaning, as the bridge builds them.</summary>
    private static readonly Dictionary<string, (int Min, int Max, string Usage)> Kinds = new(StringComparer.Ordinal)
    {
        ["linear"] = (2, 2, "in_features out_features"),
        ["conv2d"] = (3, 7, "in_channels out_channels kernel [stride] [padding] [groups] [bias 1|0]"),
        ["relu"] = (0, 0, "none"),
        ["tanh"] = (0, 0, "none"),
        ["gelu"] = (0, 0, "none"),
        ["sigmoid"] = (0, 0, "none"),
        ["flatten"] = (0, 0, "none"),
        ["maxpool2d"] = (1, 3, "kernel [stride] [padding]"),
        ["avgpool2d"] = (1, 3, "kernel [stride] [padding]"),
        ["adaptiveavgpool2d"] = (1, 2, "out_height [out_width]"),
        ["dropout"] = (0, 1, "[percent dropped]"),
        ["batchnorm"] = (0, 1, "[features or channels]"),
        ["layernorm"] = (0, 1, "[size of the last dimension]"),
        ["residual"] = (0, 0, "none; its body between 'residual {' and '}'"),
    };

    /// <summary>The layer kinds a model file takes.</summary>
    public static IReadOnlyCollection<string> KnownKinds => Kinds.Keys;

    /// <summary>The layers of the model file at <paramref name="path"/>; an unreadable or malformed file is an <see cref="InputException"/>.</summary>
    public static IReadOnlyList<LayerSpec> Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0)
        {
            throw new InputException("--model spec:FILE needs a file name after 'spec:'");
        }

        string text;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new InputException($"model file {path}: no such file");
            }

            if (info.Length > MaxBytes)
            {
                throw new InputException($"model file {path}: {info.Length} bytes, more than a layer list's {MaxBytes}");
            }

            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"model file {path}: cannot be read ({e.Message})");
        }

        return Parse(text, path);
    }

    /// <summary>The layers of a model file's text; <paramref name="source"/> names it in errors.</summary>
    public static IReadOnlyList<LayerSpec> Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var top = new List<LayerSpec>();
        // Open blocks, innermost last: the residual's line, its path, body and shortcut lists, and whether the
        // shortcut is the one being filled.
        var open = new Stack<Block>();
        var lines = text.Split('\n');
        for (var n = 1; n <= lines.Length; n++)
        {
            var line = lines[n - 1];
            var hash = line.IndexOf('#', StringComparison.Ordinal);
            var content = (hash >= 0 ? line[..hash] : line).Trim();
            if (content.Length == 0)
            {
                continue;
            }

            var current = open.Count > 0 ? open.Peek() : null;
            var path = current is null ? $"layer {top.Count}" : $"{current.Path}.{(current.InShortcut ? "shortcut." : "")}{current.Target.Count}";
            if (content.StartsWith('}'))
            {
                if (current is null)
                {
                    throw Error(source, n, content, "a '}' without a 'residual {' before it");
                }

                var rest = content[1..].Trim();
                if (rest.Length == 0)
                {
                    Close(open.Pop(), source, n, content);
                    continue;
                }

                if (!current.InShortcut && IsOpening(rest, "shortcut"))
                {
                    if (current.Body.Count == 0)
                    {
                        throw Error(source, current.Line, "residual {", $"{current.Path}: the residual's body is empty");
                    }

                    current.InShortcut = true;
                    continue;
                }

                throw Error(source, n, content, current.InShortcut
                    ? "after a shortcut's '}' nothing may follow on its line"
                    : "after a body's '}' only 'shortcut {' may follow on its line");
            }

            var words = content.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var opens = words[^1] == "{" || words[^1].EndsWith('{');
            if (opens)
            {
                words[^1] = words[^1].TrimEnd('{');
                words = [.. words.Where(w => w.Length > 0)];
            }

            var kind = words.Length > 0 ? words[0] : "";
            if (!Kinds.TryGetValue(kind, out var usage))
            {
                throw Error(source, n, content, $"{path}: unknown layer kind '{kind}' (known: {string.Join(", ", Kinds.Keys)})");
            }

            var args = new long[words.Length - 1];
            for (var i = 1; i < words.Length; i++)
            {
                if (!long.TryParse(words[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out args[i - 1]))
                {
                    throw Error(source, n, content, $"{path} ({kind}): argument '{words[i]}' is not an integer");
                }
            }

            if (args.Length < usage.Min || args.Length > usage.Max)
            {
                var counts = usage.Min == usage.Max ? $"{usage.Min}" : $"{usage.Min} to {usage.Max}";
                throw Error(source, n, content, $"{path} ({kind}): takes {counts} argument{(usage.Max == 1 ? "" : "s")} ({usage.Usage}), got {args.Length}");
            }

            if (kind == "residual")
            {
                if (!opens)
                {
                    throw Error(source, n, content, $"{path}: a residual block opens its body on its line: 'residual {{'");
                }

                if (open.Count >= 16)
                {
                    throw Error(source, n, content, $"{path}: residual blocks nested deeper than 16");
                }

                open.Push(new Block(n, path));
                continue;
            }

            if (opens)
            {
                throw Error(source, n, content, $"{path} ({kind}): only residual takes a body in braces");
            }

            (current?.Target ?? top).Add(new LayerSpec(kind, args));
        }

        if (open.Count > 0)
        {
            var unclosed = open.Peek();
            throw Error(source, unclosed.Line, "residual {", $"{unclosed.Path}: the block is never closed (a '}}' is missing)");
        }

        if (top.Count == 0)
        {
            throw new InputException($"model file {source}: no layers (one layer per line, '#' starts a comment)");
        }

        return top;

        void Close(Block block, string file, int n, string content)
        {
            if (block.Body.Count == 0)
            {
                throw Error(file, n, content, $"{block.Path}: the residual's body is empty");
            }

            if (block.InShortcut && block.Shortcut.Count == 0)
            {
                throw Error(file, n, content, $"{block.Path}: the residual's shortcut is empty (leave '}} shortcut {{' out for the identity)");
            }

            var layer = LayerSpec.ResidualWithShortcut(block.Body, block.Shortcut);
            (open.Count > 0 ? open.Peek().Target : top).Add(layer);
        }
    }

    private static bool IsOpening(string text, string word) =>
        text.StartsWith(word, StringComparison.Ordinal) && text[word.Length..].Trim() == "{";

    private static InputException Error(string source, int line, string content, string what) =>
        new($"model file {source}, line {line} ('{content}'): {what}");

    private sealed class Block(int line, string path)
    {
        public int Line { get; } = line;

        public string Path { get; } = path;

        public List<LayerSpec> Body { get; } = [];

        public List<LayerSpec> Shortcut { get; } = [];

        public bool InShortcut { get; set; }

        public List<LayerSpec> Target => InShortcut ? Shortcut : Body;
    }
}
