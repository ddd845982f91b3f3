namespace MpiPipeline.Data;

/// <summary>
/// One part (training or test) of a data set as its files hold it, before normalization: <see cref="Count"/> samples
/// of <see cref="SampleShape"/>, as unsigned bytes (<see cref="Bytes"/>) or as floats (<see cref="Floats"/> set), and
/// their labels (already checked non-negative).
/// </summary>
/// <param name="ImagesPath">The file of the samples (or the files, for messages), e.g. ".../train-images-idx3-ubyte".</param>
/// <param name="LabelsPath">The file of the labels; the same as <paramref name="ImagesPath"/> where a file holds both (CIFAR).</param>
internal sealed record RawPart(string ImagesPath, string LabelsPath, int[] SampleShape, int Count, ReadOnlyMemory<byte> Bytes, float[]? Floats, int[] Labels)
{
    public string ElementKind => Floats is null ? "unsigned bytes" : "floats";
}

/// <summary>
/// What every data set read from files does the same way (<c>idx:</c>, <c>cifar10:</c>, <c>npy:</c>): the class count
/// from the training labels (or the format's own), the checks between the parts (counts, shapes, labels in range),
/// and the normalization with the training set's statistics (<see cref="ChannelStatistics"/>). The test part needs
/// the training part's classes and statistics, so loading it reads the training files too: a data set's loader is
/// called once per part, and the files are read again rather than kept between the calls.
/// </summary>
internal static class FileDataSet
{
    /// <summary>The most classes a data set may have: labels are class indices 0..K-1, not arbitrary codes.</summary>
    public const int MaxClasses = 1 << 16;

    /// <summary>The folder of <c>KIND:DIR</c>; an <see cref="InputException"/> when it is missing or not a folder.</summary>
    public static string Folder(string name, string form)
    {
        var colon = name.IndexOf(':', StringComparison.Ordinal);
        var folder = colon < 0 ? "" : name[(colon + 1)..];
        if (folder.Trim().Length == 0)
        {
            throw new InputException($"--dataset '{name}': no folder given; the form is {form}");
        }

        if (!Directory.Exists(folder))
        {
            throw new InputException($"--dataset '{name}': the folder {folder} does not exist");
        }

        return folder;
    }

    /// <param name="kind">The data set's kind for messages and its name, e.g. "idx" or "CIFAR-10".</param>
    /// <param name="read">Reads the training (true) or test (false) part's files.</param>
    /// <param name="fixedClasses">The format's class count (CIFAR-10: 10); null: the largest training label + 1.</param>
    public static Dataset Load(string kind, bool train, Func<bool, RawPart> read, int? fixedClasses = null)
    {
        var trainPart = Check(read(true));
        var classes = fixedClasses ?? ClassesOf(trainPart);
        var part = train ? trainPart : Check(read(false));
        if (!train)
        {
            if (!part.SampleShape.AsSpan().SequenceEqual(trainPart.SampleShape))
            {
                throw new InputException($"{part.ImagesPath}: test samples are {Shape(part)}, the training samples in {trainPart.ImagesPath} are " +
                    $"{Shape(trainPart)}; both parts must have one shape");
            }

            if (part.ElementKind != trainPart.ElementKind)
            {
                throw new InputException($"{part.ImagesPath}: test samples are {part.ElementKind}, the training samples in {trainPart.ImagesPath} " +
                    $"are {trainPart.ElementKind}; both parts must have one element type (they share one normalization)");
            }
        }

        var why = fixedClasses is null ? $"the classes the training labels in {trainPart.LabelsPath} define" : $"{kind} has {classes} classes";
        RequireBelow(part, classes, why);
        var statistics = trainPart.Floats is { } trainFloats
            ? ChannelStatistics.Of(trainFloats, trainPart.SampleShape)
            : ChannelStatistics.Of(trainPart.Bytes.Span, trainPart.SampleShape);
        float[] images;
        if (part.Floats is { } floats)
        {
            images = floats;
            statistics.ApplyInPlace(images);
        }
        else
        {
            images = statistics.Apply(part.Bytes.Span);
        }

        return new Dataset($"{kind} {(train ? "train" : "test")}", images, part.Labels, part.SampleShape, classes)
        {
            Source = part.ImagesPath,
            Normalization = statistics.Describe(),
        };
    }

    /// <summary>The part's own consistency: samples there, as many labels as samples.</summary>
    private static RawPart Check(RawPart part)
    {
        if (part.Count == 0)
        {
            throw new InputException($"{part.ImagesPath}: holds no samples; a data set's part needs at least one");
        }

        if (part.Labels.Length != part.Count)
        {
            throw new InputException($"{part.LabelsPath} holds {part.Labels.Length} labels but {part.ImagesPath} holds {part.Count} samples; the counts must match");
        }

        return part;
    }

    private static int ClassesOf(RawPart train)
    {
        var max = train.Labels.Max();
        if (max >= MaxClasses)
        {
            var index = Array.IndexOf(train.Labels, max);
            throw new InputException($"{train.LabelsPath}: label {max} at index {index}: labels are class indices 0..K-1 with K at most {MaxClasses}");
        }

        if (max < 1)
        {
            throw new InputException($"{train.LabelsPath}: every label is {max}; a classifier needs at least two classes (labels 0..K-1)");
        }

        return max + 1;
    }

    private static void RequireBelow(RawPart part, int classes, string why)
    {
        for (var i = 0; i < part.Labels.Length; i++)
        {
            if (part.Labels[i] >= classes)
            {
                throw new InputException($"{part.LabelsPath}: label {part.Labels[i]} at index {i} is outside 0..{classes - 1} ({why})");
            }
        }
    }

    private static string Shape(RawPart part) => Torch.SampleGeometry.Format(part.SampleShape);
}
