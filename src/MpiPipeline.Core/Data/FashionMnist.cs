namespace MpiPipeline.Data;

/// <summary>
/// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60 000 training and 10 000 test grey-scale images of 28x28 pixels in
/// 10 classes, as IDX files (gzip-compressed or not). Pixels become floats normalized with the training set's mean
/// and standard deviation: x = (pixel / 255 - <see cref="PixelMean"/>) / <see cref="PixelStd"/>.
/// </summary>
internal static class FashionMnist
{
    /// <summary>Where the Debian package <see cref="DebianPackage"/> installs the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    public const string DebianPackage = "dataset-fashion-mnist";

    /// <summary>Mean of the training pixels, scaled to [0, 1].</summary>
    public const float PixelMean = 0.2860f;

    /// <summary>Standard deviation of the training pixels, scaled to [0, 1].</summary>
    public const float PixelStd = 0.3530f;

    public const int Rows = 28;
    public const int Columns = 28;
    public const int Classes = 10;
    public const int TrainCount = 60_000;
    public const int TestCount = 10_000;

    public static DataSetRegistration Registration { get; } = new(
        "fashion-mnist",
        $"Fashion-MNIST, 1x28x28 grey-scale images in 10 classes, from --data (default {DefaultDirectory})",
        (_, directory, train) => Load(directory, train));

    /// <summary>The class names, by label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Shape of one sample: one channel of 28x28.</summary>
    public static int[] SampleShape => [1, Rows, Columns];

    public static Dataset LoadTrain(string? directory = null) => Load(directory, train: true);

    public static Dataset LoadTest(string? directory = null) => Load(directory, train: false);

    /// <summary>The training or test set from <paramref name="directory"/> (null: <see cref="DefaultDirectory"/>).</summary>
    public static Dataset Load(string? directory, bool train)
    {
        directory ??= DefaultDirectory;
        var prefix = train ? "train" : "t10k";
        var part = train ? "training" : "test";
        var imagesPath = FindFile(directory, $"{prefix}-images-idx3-ubyte", $"{part} images");
        var labelsPath = FindFile(directory, $"{prefix}-labels-idx1-ubyte", $"{part} labels");

        var images = IdxReader.ReadImages(imagesPath);
        if (images.Count == 0)
        {
            // A valid IDX file, but a data set without samples fails later with a message about batches or accuracy
            // that names no file: name it here.
            throw new InputException($"{imagesPath}: holds no images (the header's image count is 0); the {part} set needs at least one.");
        }

        if (images.Rows != Rows || images.Columns != Columns)
        {
            throw new InputException(
                $"{imagesPath}: images are {images.Rows}x{images.Columns} pixels; Fashion-MNIST and the models for " +
                $"it take {Rows}x{Columns}.");
        }

        var labels = IdxReader.ReadLabels(labelsPath);
        if (labels.Length != images.Count)
        {
            throw new InputException(
                $"{labelsPath} holds {labels.Length} labels but {imagesPath} holds {images.Count} images; the counts must match.");
        }

        return new Dataset(
            $"Fashion-MNIST {(train ? "train" : "test")}",
            Normalize(images.Pixels.Span, PixelMean, PixelStd),
            ToClassIndices(labels, labelsPath),
            SampleShape,
            Classes)
        {
            Source = imagesPath,
            Normalization = $"(x / 255 - {PixelMean}) / {PixelStd} (the Fashion-MNIST training set's mean and std)",
        };
    }

    /// <summary>(pixel / 255 - mean) / std for every pixel, in one pass through a 256-entry table.</summary>
    public static float[] Normalize(ReadOnlySpan<byte> pixels, float mean, float std)
    {
        Span<float> table = stackalloc float[256];
        for (var value = 0; value < table.Length; value++)
        {
            table[value] = (value / 255f - mean) / std;
        }

        var result = GC.AllocateUninitializedArray<float>(pixels.Length);
        for (var i = 0; i < pixels.Length; i++)
        {
            result[i] = table[pixels[i]];
        }

        return result;
    }

    private static int[] ToClassIndices(byte[] labels, string path)
    {
        var result = new int[labels.Length];
        for (var i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= Classes)
            {
                throw new InputException(
                    $"{path}: label {labels[i]} at index {i} is outside 0..{Classes - 1}; the file is not Fashion-MNIST labels.");
            }

            result[i] = labels[i];
        }

        return result;
    }

    /// <summary><paramref name="baseName"/>.gz or <paramref name="baseName"/> in the directory, whichever exists.</summary>
    private static string FindFile(string directory, string baseName, string what)
    {
        string[] candidates = [baseName + ".gz", baseName];
        foreach (var candidate in candidates)
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path))
            {
                return path;
            }
        }

        var problem = Directory.Exists(directory)
            ? $"Fashion-MNIST {what} not found in {directory} (looked for {string.Join(" and ", candidates)})."
            : $"Fashion-MNIST {what} not found: the directory {directory} does not exist.";
        throw new InputException(
            $"{problem} " +
            $"The default directory {DefaultDirectory} comes from the Debian package {DebianPackage} " +
            $"(`make deps` installs it), or pass --data DIR with a directory holding the four IDX files.");
    }
}
