using System.Globalization;
using MpiPipeline.Torch;

namespace MpiPipeline.Data;

/// <summary>
/// Generated data of any geometry, for measuring compute and communication without reading files and for models of
/// shapes no installed data set has (Horovod's synthetic benchmark does the same). <c>synthetic:CxHxW:K</c>: samples
/// of C x H x W values (one to three dimensions, e.g. 3x32x32 or 100) in K classes; <c>synthetic</c> alone is
/// 3x32x32:10. Each class k has a fixed prototype P_k with N(0, 1) values, constant over blocks of
/// <see cref="Block"/> x <see cref="Block"/> pixels for images (C x H x W), so that it has shapes a convolution can
/// see; sample i is drawn with a uniform label y and the values x = s P_y + N(0, 1) noise with
/// s = <see cref="SignalFor"/>(F) = 3 / sqrt(F) for F values per sample: two prototypes then stand about 3 sqrt(2)
/// noise deviations apart at any F, so the classes overlap a little and a model learns them over an epoch or two
/// instead of at once. Everything
/// comes from <see cref="SplitMix64"/> seeded by (geometry, part, i): every rank and every run gets the same data.
/// </summary>
internal static class SyntheticImages
{
    public const int TrainCount = 8192;
    public const int TestCount = 1024;

    /// <summary>The largest sample it makes (3x64x64 fits): the training part is then 512 MiB per rank.</summary>
    public const int MaxSampleSize = 16_384;

    /// <summary>s, the prototypes' scale against the unit noise for <paramref name="size"/> values per sample.</summary>
    public static float SignalFor(int size) => (float)(3 / Math.Sqrt(size));

    /// <summary>The side of the pixel blocks over which an image prototype is constant.</summary>
    public const int Block = 4;

    private static readonly int[] DefaultShape = [3, 32, 32];
    private const int DefaultClasses = 10;

    public static DataSetRegistration Registration { get; } = new(
        "synthetic:CxHxW:K",
        $"generated class prototypes plus noise, any shape (one to three dimensions, at most {MaxSampleSize} values) " +
        $"and K >= 2 classes; {TrainCount} training and {TestCount} test samples; 'synthetic' alone is 3x32x32:10",
        Load);

    public static Dataset Load(string name, string? directory, bool train)
    {
        if (directory is not null)
        {
            throw new InputException($"--dataset {name} is generated; --data {directory} applies to data sets read from files");
        }

        var (shape, classes) = Parse(name);
        var size = shape.Aggregate(1, (product, dimension) => product * dimension);
        var count = train ? TrainCount : TestCount;
        var geometryKey = Shuffle.Derive(classes, [.. shape.Select(d => (long)d)]);
        var signal = SignalFor(size);
        var prototypes = new float[classes * size];
        var random = new SplitMix64(geometryKey);
        for (var k = 0; k < classes; k++)
        {
            Prototype(ref random, shape, prototypes.AsSpan(k * size, size));
        }

        var images = GC.AllocateUninitializedArray<float>(count * size);
        var labels = new int[count];
        Parallel.For(0, count, i =>
        {
            var sample = new SplitMix64(Shuffle.Derive((long)geometryKey, train ? 1 : 2, i));
            var label = sample.NextInt(classes);
            labels[i] = label;
            var values = images.AsSpan(i * size, size);
            FillNormal(ref sample, values);
            var prototype = prototypes.AsSpan(label * size, size);
            for (var v = 0; v < size; v++)
            {
                values[v] += signal * prototype[v];
            }
        });

        return new Dataset($"synthetic {SampleGeometry.Format(shape)}:{classes} {(train ? "train" : "test")}", images, labels, shape, classes);
    }

    /// <summary>(shape, classes) of "synthetic", "synthetic:CxHxW" or "synthetic:CxHxW:K".</summary>
    public static (int[] Shape, int Classes) Parse(string name)
    {
        var parts = name.Trim().ToLowerInvariant().Split(':');
        if (parts.Length > 3)
        {
            throw Bad(name, "too many ':' parts");
        }

        var shape = parts.Length > 1 ? parts[1].Split('x').Select(d => Number(d, name, "a dimension", 1)).ToArray() : DefaultShape;
        var classes = parts.Length > 2 ? Number(parts[2], name, "the class count K", 2) : DefaultClasses;
        if (shape.Length > 3 || shape.Aggregate(1L, (product, dimension) => product * dimension) > MaxSampleSize)
        {
            throw Bad(name, $"a sample has one to three dimensions and at most {MaxSampleSize} values");
        }

        return (shape, classes);
    }

    /// <summary>N(0, 1) values; for C x H x W one value per <see cref="Block"/> x <see cref="Block"/> block of each channel.</summary>
    private static void Prototype(ref SplitMix64 random, int[] shape, Span<float> prototype)
    {
        if (shape is not [var channels, var rows, var columns])
        {
            FillNormal(ref random, prototype);
            return;
        }

        var (blockRows, blockColumns) = ((rows + Block - 1) / Block, (columns + Block - 1) / Block);
        var coarse = new float[channels * blockRows * blockColumns];
        FillNormal(ref random, coarse);
        for (var i = 0; i < prototype.Length; i++)
        {
            var (c, h, w) = (i / (rows * columns), i / columns % rows, i % columns);
            prototype[i] = coarse[(c * blockRows + h / Block) * blockColumns + w / Block];
        }
    }

    /// <summary>Standard normal values by Box-Muller over the top 53 bits of each draw.</summary>
    private static void FillNormal(ref SplitMix64 random, Span<float> values)
    {
        for (var i = 0; i < values.Length; i += 2)
        {
            var u1 = ((random.NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53)); // (0, 1]: the log stays finite
            var u2 = (random.NextUInt64() >> 11) * (1.0 / (1UL << 53));
            var radius = Math.Sqrt(-2 * Math.Log(u1));
            values[i] = (float)(radius * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < values.Length)
            {
                values[i + 1] = (float)(radius * Math.Sin(2 * Math.PI * u2));
            }
        }
    }

    private static int Number(string text, string name, string what, int min)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > MaxSampleSize)
        {
            throw Bad(name, $"{what} must be an integer from {min} to {MaxSampleSize}, got '{text}'");
        }

        return value;
    }

    private static InputException Bad(string name, string problem) =>
        new($"--dataset '{name}': {problem} (the form is synthetic:CxHxW:K, e.g. synthetic:3x32x32:10)");
}
