using System.Globalization;
using MpiPipeline.Mpi;

namespace MpiPipeline.Torch;

/// <summary>The default networks, by name, as layer lists for Fashion-MNIST (inputs [1, 28, 28], 10 classes).</summary>
public static class ModelZoo
{
    public const int FashionMnistClasses = 10;

    /// <summary>Hidden width of <c>deep-mlp:N</c> when the name does not give one.</summary>
    public const int DeepMlpDefaultWidth = 256;

    public static int[] FashionMnistSampleShape => [1, 28, 28];

    /// <summary>Hidden width of <c>res-mlp:N</c> when the name does not give one.</summary>
    public const int ResMlpDefaultWidth = 16;

    public static IReadOnlyList<string> Names { get; } = ["mlp", "cnn", "deep-mlp:N", "res-mlp:N"];

    /// <summary>
    /// <c>mlp</c>: flatten, linear 784-256, relu, linear 256-10.
    /// <c>cnn</c>: two conv 3x3 (pad 1) + relu + maxpool 2 blocks (1-16, 16-32 channels), then linear 1568-128, relu, linear 128-10.
    /// <c>deep-mlp:N</c> (or <c>deep-mlp:N:W</c>): flatten and N linear layers of width W (256) with relu between,
    /// for splitting into many pipeline stages.
    /// <c>res-mlp:N</c> (or <c>res-mlp:N:W</c>, W = 16): flatten, linear 784-W, N - 2 residual blocks
    /// <c>x + tanh(linear W-W (relu x))</c>, relu, linear W-10: N parametric layers like deep-mlp:N, but trainable at
    /// N = 200 with libtorch's default initialization (a plain ReLU stack that deep loses the input signal; the bounded
    /// tanh branch keeps the residual stream's variance growing at most linearly with depth).
    /// </summary>
    public static IReadOnlyList<LayerSpec> Build(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var parts = name.Trim().ToLowerInvariant().Split(':');
        return parts[0] switch
        {
            "mlp" when parts.Length == 1 => Mlp(),
            "cnn" when parts.Length == 1 => Cnn(),
            "deep-mlp" when parts.Length is 2 or 3 => DeepMlp(
                Count(parts[1], name, "layer count", 1, 10_000),
                parts.Length == 3 ? Count(parts[2], name, "width", 1, 1 << 20) : DeepMlpDefaultWidth),
            "res-mlp" when parts.Length is 2 or 3 => ResMlp(
                Count(parts[1], name, "layer count", 2, 10_000),
                parts.Length == 3 ? Count(parts[2], name, "width", 1, 1 << 20) : ResMlpDefaultWidth),
            _ => throw Unknown(name),
        };
    }

    private static List<LayerSpec> Mlp() =>
    [
        new("flatten"),
        new("linear", 784, 256),
        new("relu"),
        new("linear", 256, FashionMnistClasses),
    ];

    private static List<LayerSpec> Cnn() =>
    [
        new("conv2d", 1, 16, 3, 1, 1),
        new("relu"),
        new("maxpool2d", 2),
        new("conv2d", 16, 32, 3, 1, 1),
        new("relu"),
        new("maxpool2d", 2),
        new("flatten"),
        new("linear", 32 * 7 * 7, 128),
        new("relu"),
        new("linear", 128, FashionMnistClasses),
    ];

    private static List<LayerSpec> DeepMlp(int layers, int width)
    {
        var list = new List<LayerSpec> { new("flatten") };
        var inputs = 784L;
        for (var i = 0; i < layers; i++)
        {
            var outputs = i == layers - 1 ? FashionMnistClasses : width;
            if (i > 0)
            {
                list.Add(new("relu"));
            }

            list.Add(new("linear", inputs, outputs));
            inputs = outputs;
        }

        return list;
    }

    private static List<LayerSpec> ResMlp(int layers, int width)
    {
        var list = new List<LayerSpec> { new("flatten"), new("linear", 784, width) };
        for (var i = 2; i < layers; i++)
        {
            list.Add(LayerSpec.Residual(new("relu"), new("linear", width, width), new("tanh")));
        }

        list.Add(new("relu"));
        list.Add(new("linear", width, FashionMnistClasses));
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

    private static InputException Unknown(string name) =>
        new($"unknown model '{name}' (known models: {string.Join(", ", Names)})");
}
