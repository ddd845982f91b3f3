namespace MpiPipeline.Data;

/// <summary>
/// <c>--dataset idx:DIR</c>: any image classification set in the IDX format of the MNIST family (MNIST, Fashion-MNIST,
/// KMNIST, EMNIST, or one written by the user). The folder holds four files, found by name (case-insensitive, each
/// plain or gzip-compressed): the training part's names contain "train", the test part's "test" or "t10k"; the
/// samples' names contain "images", the labels' "labels" (e.g. train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte).
/// Samples: N x H x W (one channel), N x C x H x W, or N x F, unsigned bytes or float32; labels: N unsigned bytes. The
/// class count is the largest training label + 1; the values are normalized with the training set's statistics.
/// </summary>
internal static class IdxDataSet
{
    public const string Form = "idx:DIR";

    public static DataSetRegistration Registration { get; } = new(
        Form,
        "IDX files in DIR (MNIST's format): *train*images*, *train*labels*, *test*|*t10k* images and labels, optionally .gz; " +
        "samples N x H x W, N x C x H x W or N x F of unsigned bytes or floats; labels unsigned bytes; classes from the labels",
        (name, _, train) => Load(name, train));

    public static Dataset Load(string name, bool train)
    {
        var folder = FileDataSet.Folder(name, Form);
        return FileDataSet.Load("idx", train, part => Read(folder, part));
    }

    private static RawPart Read(string folder, bool train)
    {
        var imagesPath = Find(folder, train, "images");
        var labelsPath = Find(folder, train, "labels");
        var images = IdxReader.ReadArray(imagesPath, 2, 4, "images");
        var labels = IdxReader.ReadLabels(labelsPath);
        int[] shape = images.Dimensions switch
        {
            [_, var rows, var columns] => [1, rows, columns],
            [_, .. var rest] => rest,
            _ => throw new InvalidOperationException("ReadArray returns 2 to 4 dimensions"),
        };
        if (shape.Any(d => d == 0))
        {
            throw new InputException($"{imagesPath}: samples of {Torch.SampleGeometry.Format(shape)} values hold nothing; every dimension must be at least 1");
        }

        return new RawPart(imagesPath, labelsPath, shape, images.Dimensions[0], images.Bytes, images.Floats, [.. labels.Select(l => (int)l)]);
    }

    /// <summary>The one file of the part and role; X and X.gz count as one (the .gz is read, as for Fashion-MNIST).</summary>
    private static string Find(string folder, bool train, string role)
    {
        string[] partWords = train ? ["train"] : ["test", "t10k"];
        var found = Directory.EnumerateFiles(folder)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(f => f.Contains(role, StringComparison.OrdinalIgnoreCase) && partWords.Any(w => f.Contains(w, StringComparison.OrdinalIgnoreCase)))
            .GroupBy(f => f.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? f[..^3] : f)
            .Select(g => g.OrderByDescending(f => f.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)).First())
            .Order(StringComparer.Ordinal)
            .ToList();
        var what = $"{(train ? "training" : "test")} {role}";
        var pattern = $"a name containing '{string.Join("' or '", partWords)}' and '{role}'";
        return found switch
        {
            [var one] => Path.Combine(folder, one),
            [] => throw new InputException($"--dataset idx:{folder}: no {what} file ({pattern}, optionally .gz) in {folder}"),
            _ => throw new InputException($"--dataset idx:{folder}: {found.Count} files could be the {what} ({string.Join(", ", found)}); " +
                $"keep one set of files per folder"),
        };
    }
}
