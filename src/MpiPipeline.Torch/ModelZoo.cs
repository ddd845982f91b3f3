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

    /// <summary>The width of <c>cnn-wide</c>'s hidden linear layer.</summary>
    public const int CnnWideWidth = 4096;

    /// <summary>The prefix of a model file: <c>spec:FILE</c> (<see cref="ModelFile"/>).</summary>
    public const string SpecPrefix = "spec:";

    public static IReadOnlyList<string> Names { get; } =
        ["linear", "mlp", "cnn", "cnn-wide", "deep-mlp:N", "res-mlp:N", "resnet20", "vgg11-small", "spec:FILE", "torchscript:FILE"];

    /// <summary>
    /// With F = the values per sample and K = the classes:
    /// <c>linear</c>: flatten, linear F-K: multinomial logistic regression with the cross-entropy loss, a convex problem.
    /// <c>mlp</c>: flatten, linear F-256, relu, linear 256-K.
    /// <c>cnn</c> (samples C x H x W, H and W at least 4): two conv 3x3 (pad 1) + relu + maxpool 2 blocks (C-16, 16-32
    /// channels), then linear 32 (H/4) (W/4)-128 (halvings rounded down), relu, linear 128-K; on Fashion-MNIST
    /// (1x28x28) linear 1568-128.
    /// <c>cnn-wide</c>: cnn's two conv blocks, then linear 32 (H/4) (W/4)-4096, relu, linear 4096-K: a large fully
    /// connected part (99.9% of its 6.47 M parameters on Fashion-MNIST) behind small convolutions, the case where
    /// layer-wise parallelism wants model parallelism for the linear layers and data parallelism for the convs.
    /// <c>deep-mlp:N</c> (or <c>deep-mlp:N:W</c>): flatten and N linear layers of width W (256) with relu between,
    /// for splitting into many pipeline stages.
    /// <c>res-mlp:N</c> (or <c>res-mlp:N:W</c>, W = 16): flatten, linear F-W, N - 2 residual blocks
    /// <c>x + tanh(linear W-W (relu x))</c>, relu, linear W-K: N parametric layers like deep-mlp:N, but trainable at
    /// N = 200 with libtorch's default initialization (a plain ReLU stack that deep loses the input signal; the bounded
    /// tanh branch keeps the residual stream's variance growing at most linearly with depth).
    /// <c>resnet20</c> (images C x H x W): He et al. 2016's CIFAR ResNet (section 4.2, n = 3): conv 3x3 C-16, BatchNorm,
    /// relu, then 3 stages of 3 basic blocks (conv 3x3, BatchNorm, relu, conv 3x3, BatchNorm, plus the shortcut, relu)
    /// of 16, 32 and 64 channels, the first block of stages 2 and 3 with stride 2 and a projection shortcut (option B:
    /// conv 1x1 stride 2 and BatchNorm; the paper's CIFAR runs used option A, zero padding, which has no parameters),
    /// global average pooling, linear 64-K. Convolutions before a BatchNorm have no bias. 272,474 parameters on 3x32x32
    /// with 10 classes (option A: 269,722; the paper's "0.27M").
    /// <c>vgg11-small</c> (images C x H x W): VGG-11's eight 3x3 convolutions (configuration A of Simonyan and Zisserman
    /// 2015) at a quarter of the width, 16-32-64-64-128-128-128-128 channels, each with BatchNorm and relu, max pool 2
    /// after convolutions 1, 2, 4, 6 and 8 while the side is at least 2 (skipped on smaller sides), global average
    /// pooling, linear 128-K: 579,098 parameters on 3x32x32 with 10 classes.
    /// <c>spec:FILE</c>: the layers of a model file (<see cref="ModelFile"/>); the file fixes the input shape, which the
    /// bridge checks against the data's.
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

        if (name.StartsWith(SpecPrefix, StringComparison.OrdinalIgnoreCase))
        {
            var layers = ModelFile.Load(name[SpecPrefix.Length..]);
            return _ => [.. layers];
        }

        var parts = name.Trim().ToLowerInvariant().Split(':');
        switch (parts[0])
        {
            case "linear" when parts.Length == 1:
                return g => [new("flatten"), new("linear", g.Size, g.Classes)];
            case "mlp" when parts.Length == 1:
                return Mlp;
            case "cnn" when parts.Length == 1:
                return g => Cnn(g, name, 128);
            case "cnn-wide" when parts.Length == 1:
                return g => Cnn(g, name, CnnWideWidth);
            case "resnet20" when parts.Length == 1:
                return g => ResNet20(g, name);
            case "vgg11-small" when parts.Length == 1:
                return g => Vgg11Small(g, name);
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

    private static List<LayerSpec> Cnn(SampleGeometry g, string name, int hidden)
    {
        if (g.Shape is not [var channels, var rows, var columns] || rows < CnnMinimumSide || columns < CnnMinimumSide)
        {
            throw new SampleShapeException(
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
            new("linear", 32L * (rows / 2 / 2) * (columns / 2 / 2), hidden),
            new("relu"),
            new("linear", hidden, g.Classes),
        ];
    }

    private static (long Channels, long Rows, long Columns) Image(SampleGeometry g, string name)
    {
        if (g.Shape is not [var channels, var rows, var columns])
        {
            throw new InputException(
                $"model '{name}' takes images of C x H x W values; the data's samples are {SampleGeometry.Format(g.Shape)} " +
                "(use mlp, deep-mlp:N or res-mlp:N for other shapes)");
        }

        return (channels, rows, columns);
    }

    private static List<LayerSpec> ResNet20(SampleGeometry g, string name)
    {
        var (channels, _, _) = Image(g, name);
        var list = new List<LayerSpec> { Conv3x3(channels, 16, 1), new("batchnorm"), new("relu") };
        var inputs = 16L;
        foreach (var width in new long[] { 16, 32, 64 })
        {
            for (var block = 0; block < 3; block++)
            {
                var stride = block == 0 && width != inputs ? 2 : 1;
                List<LayerSpec> body = [Conv3x3(inputs, width, stride), new("batchnorm"), new("relu"), Conv3x3(width, width, 1), new("batchnorm")];
                List<LayerSpec> shortcut = stride == 1 ? [] : [new("conv2d", inputs, width, 1, stride, 0, 1, 0), new("batchnorm")];
                list.Add(LayerSpec.ResidualWithShortcut(body, shortcut));
                list.Add(new("relu"));
                inputs = width;
            }
        }

        list.AddRange([new("adaptiveavgpool2d", 1), new("flatten"), new("linear", 64, g.Classes)]);
        return list;
    }

    private static List<LayerSpec> Vgg11Small(SampleGeometry g, string name)
    {
        var (channels, rows, columns) = Image(g, name);
        long[] widths = [16, 32, 64, 64, 128, 128, 128, 128];
        var list = new List<LayerSpec>();
        var inputs = channels;
        for (var i = 0; i < widths.Length; i++)
        {
            list.AddRange([Conv3x3(inputs, widths[i], 1), new("batchnorm"), new("relu")]);
            inputs = widths[i];
            if ((i is 0 or 1 or 3 or 5 or 7) && rows >= 2 && columns >= 2)
            {
                list.Add(new("maxpool2d", 2));
                (rows, columns) = (rows / 2, columns / 2);
            }
        }

        list.AddRange([new("adaptiveavgpool2d", 1), new("flatten"), new("linear", inputs, g.Classes)]);
        return list;
    }

    /// <summary>A 3x3 convolution with padding 1 and no bias (a BatchNorm follows, whose shift makes a bias redundant).</summary>
    private static LayerSpec Conv3x3(long inputs, long outputs, long stride) => new("conv2d", inputs, outputs, 3, stride, 1, 1, 0);

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
