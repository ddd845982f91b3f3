using System.Globalization;

namespace MpiPipeline.Torch;

/// <summary>
/// What a model is built for: the shape of one input sample (e.g. {1, 28, 28}: channels, rows, columns) and the
/// number of classes its last layer scores. A data set says both; the zoo sizes the first and last layers from them.
/// </summary>
public sealed record SampleGeometry(int[] Shape, int Classes)
{
    /// <summary>Values per sample: the product of <see cref="Shape"/>.</summary>
    public long Size => Shape.Aggregate(1L, (product, dimension) => product * dimension);

    /// <summary>A shape written as 1x28x28.</summary>
    public static string Format(ReadOnlySpan<int> shape) => string.Join("x", shape.ToArray());

    public override string ToString() => $"{Format(Shape)} samples, {Classes} classes";

    public bool Equals(SampleGeometry? other) =>
        other is not null && Classes == other.Classes && Shape.AsSpan().SequenceEqual(other.Shape);

    public override int GetHashCode() => HashCode.Combine(Classes, Size, Shape.Length);
}

/// <summary>The built-in networks, by name, as layer lists for a <see cref="SampleGeometry"/>.</summary>
public static class ModelZoo
{
    /// <summary>Hidden width of <c>deep-mlp:N</c> when the name does not give one.</summary>
    public const int DeepMlpDefaultWidth = 256;

    /// <summary>Hidden width of <c>res-mlp:N</c> when the name does not give one.</summary>
    public const int ResMlpDefaultWidth = 16;

    /// <summary>The smallest image side <c>cnn</c> takes: two 2x2 poolings must leave at least one pixel.</summary>
    public const int CnnMinimumSide = 4;

    public static IReadOnlyList<string> Names { get; } = ["linear", "mlp", "cnn", "deep-mlp:N", "res-mlp:N", "torchscript:FILE"];

    /// <summary>
    /// With F = the values per sample and K = the classes:
    /// <c>linear</c>: flatten, linear F-K: multinomial logistic regression with the cross-entropy loss, a convex problem.
    /// <c>mlp</c>: flatten, linear F-256, relu, linear 256-K.
    /// <c>cnn</c> (samples C x H x W, H and W at least 4): two conv 3x3 (pad 1) + relu + maxpool 2 blocks (C-16, 16-32
    /// channels), then linear 32 (H/4) (W/4)-128 (halvings rounded down), relu, linear 128-K; on Fashion-MNIST
    /// (1x28x28) linear 1568-128.
    /// <c>deep-mlp:N</c> (or <c>deep-mlp:N:W</c>): flatten and N linear layers of width W (256) with relu between,
    /// for splitting into many pipeline stages.
    /// <c>res-mlp:N</c> (or <c>res-mlp:N:W</c>, W = 16): flatten, linear F-W, N - 2 residual blocks
    /// <c>x + tanh(linear W-W (relu x))</c>, relu, linear W-K: N parametric layers like deep-mlp:N, but trainable at
    /// N = 200 with libtorch's default initialization (a plain ReLU stack that deep loses the input signal; the bounded
    /// tanh branch keeps the residual stream's variance growing at most linearly with depth).
    /// <c>torchscript:FILE</c>: a module saved by PyTorch (<see cref="TorchScriptModel"/>).
    /// </summary>
    public static IReadOnlyList<LayerSpec> Build(string name, SampleGeometry geometry)
    {
        ArgumentNullException.ThrowIfNull(geometry);
        return Parse(name)(geometry);
    }

    /// <summary>Fails with an <see cref="InputException"/> unless <paramref name="name"/> names a model (any geometry).</summary>
    public static void CheckName(string name) => Parse(name);

    private static Func<SampleGeometry, List<LayerSpec>> Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (TorchScriptModel.Names(name))
        {
            // The file name keeps its case and any ':'; the file is loaded when the data's geometry is known.
            TorchScriptModel.File(name);
            return g => [.. TorchScriptModel.Build(name, g)];
        }

        var parts = name.Trim().ToLowerInvariant().Split(':');
        switch (parts[0])
        {
            case "linear" when parts.Length == 1:
                return g => [new("flatten"), new("linear", g.Size, g.Classes)];
            case "mlp" when parts.Length == 1:
                return Mlp;
            case "cnn" when parts.Length == 1:
                return g => Cnn(g, name);
            case "deep-mlp" when parts.Length is 2 or 3:
            {
                var layers = Count(parts[1], name, "layer count", 1, 10_000);
                var width = parts.Length == 3 ? Count(parts[2], name, "width", 1, 1 << 20) : DeepMlpDefaultWidth;
                return g => DeepMlp(g, layers, width);
            }

            case "res-mlp" when parts.Length is 2 or 3:
            {
                var layers = Count(parts[1], name, "layer count", 2, 10_000);
                var width = parts.Length == 3 ? Count(parts[2], name, "width", 1, 1 << 20) : ResMlpDefaultWidth;
                return g => ResMlp(g, layers, width);
            }

            default:
                throw new InputException($"unknown model '{name}' (known models: {string.Join(", ", Names)})");
        }
    }

    private static List<LayerSpec> Mlp(SampleGeometry g) =>
    [
        new("flatten"),
        new("linear", g.Size, 256),
        new("relu"),
        new("linear", 256, g.Classes),
    ];

    private static List<LayerSpec> Cnn(SampleGeometry g, string name)
    {
        if (g.Shape is not [var channels, var rows, var columns] || rows < CnnMinimumSide || columns < CnnMinimumSide)
        {
            throw new InputException(
                $"model '{name}' takes images of C x H x W values with H and W at least {CnnMinimumSide}; the data's " +
                $"samples are {SampleGeometry.Format(g.Shape)} (use mlp, deep-mlp:N or res-mlp:N for other shapes)");
        }

        // Each maxpool 2 halves a side, rounding down (libtorch's floor mode).
        return
        [
            new("conv2d", channels, 16, 3, 1, 1),
            new("relu"),
            new("maxpool2d", 2),
            new("conv2d", 16, 32, 3, 1, 1),
            new("relu"),
            new("maxpool2d", 2),
            new("flatten"),
            new("linear", 32L * (rows / 2 / 2) * (columns / 2 / 2), 128),
            new("relu"),
            new("linear", 128, g.Classes),
        ];
    }

    private static List<LayerSpec> DeepMlp(SampleGeometry g, int layers, int width)
    {
        var list = new List<LayerSpec> { new("flatten") };
        var inputs = g.Size;
        for (var i = 0; i < layers; i++)
        {
            var outputs = i == layers - 1 ? g.Classes : width;
            if (i > 0)
            {
                list.Add(new("relu"));
            }

            list.Add(new("linear", inputs, outputs));
            inputs = outputs;
        }

        return list;
    }

    private static List<LayerSpec> ResMlp(SampleGeometry g, int layers, int width)
    {
        var list = new List<LayerSpec> { new("flatten"), new("linear", g.Size, width) };
        for (var i = 2; i < layers; i++)
        {
            list.Add(LayerSpec.Residual(new("relu"), new("linear", width, width), new("tanh")));
        }

        list.Add(new("relu"));
        list.Add(new("linear", width, g.Classes));
        return list;
    }

    private static int Count(string text, string name, string what, int min, int max)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new InputException($"model '{name}': the {what} must be an integer from {min} to {max}, got '{text}' " +
                $"(known models: {string.Join(", ", Names)})");
        }

        return value;
    }
}
