using MpiPipeline.Torch;

namespace MpiPipeline.Data;

/// <summary>
/// A labelled data set in memory: <see cref="Count"/> samples of <see cref="SampleShape"/> floats each (already
/// normalized), stored back to back in <see cref="Images"/>, and one class index per sample in <see cref="Labels"/>.
/// </summary>
internal sealed class Dataset
{
    private readonly int[] sampleShape;

    public Dataset(string name, float[] images, int[] labels, ReadOnlySpan<int> sampleShape, int classes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        this.sampleShape = sampleShape.ToArray();
        SampleSize = 1;
        foreach (var dimension in this.sampleShape)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1, nameof(sampleShape));
            SampleSize *= dimension;
        }

        if (images.Length != (long)labels.Length * SampleSize)
        {
            throw new ArgumentException(
                $"{labels.Length} labels need {(long)labels.Length * SampleSize} image values, got {images.Length}.", nameof(images));
        }

        Name = name;
        Images = images;
        Labels = labels;
        Classes = classes;
    }

    /// <summary>What it is, for messages and reports, e.g. "Fashion-MNIST train".</summary>
    public string Name { get; }

    public int Count => Labels.Length;

    /// <summary>The shape of one sample, e.g. {1, 28, 28} (channels, rows, columns); a copy.</summary>
    public int[] SampleShape => (int[])sampleShape.Clone();

    /// <summary>Floats per sample: the product of <see cref="SampleShape"/>.</summary>
    public int SampleSize { get; }

    /// <summary>All samples back to back, <see cref="Count"/> * <see cref="SampleSize"/> normalized values.</summary>
    public float[] Images { get; }

    /// <summary>Class index (0 .. <see cref="Classes"/> - 1) of each sample.</summary>
    public int[] Labels { get; }

    public int Classes { get; }

    /// <summary>The file (or files) the samples were read from, for messages about them; null for generated data.</summary>
    public string? Source { get; init; }

    /// <summary>How the values were normalized, as the run header states it; null where nothing is worth stating.</summary>
    public string? Normalization { get; init; }

    /// <summary>What a model for this data takes and scores: the sample shape and the class count.</summary>
    public SampleGeometry Geometry => new(SampleShape, Classes);

    /// <summary>The values of sample <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Sample(int index) => Images.AsSpan(checked(index * SampleSize), SampleSize);

    /// <summary>
    /// Gathers the samples at <paramref name="indices"/> into a mini-batch: <paramref name="images"/> receives
    /// indices.Length * <see cref="SampleSize"/> values, <paramref name="labels"/> indices.Length labels.
    /// </summary>
    public void CopyBatch(ReadOnlySpan<int> indices, Span<float> images, Span<int> labels)
    {
        if (images.Length < (long)indices.Length * SampleSize)
        {
            throw new ArgumentException(
                $"a batch of {indices.Length} samples needs {(long)indices.Length * SampleSize} image values; the buffer holds {images.Length}.");
        }

        CopyLabels(indices, labels); // checks the indices too
        for (var i = 0; i < indices.Length; i++)
        {
            Sample(indices[i]).CopyTo(images.Slice(i * SampleSize, SampleSize));
        }
    }

    /// <summary>The labels of the samples at <paramref name="indices"/> (the images of a batch gathered elsewhere).</summary>
    public void CopyLabels(ReadOnlySpan<int> indices, Span<int> labels)
    {
        if (labels.Length < indices.Length)
        {
            throw new ArgumentException($"{indices.Length} labels do not fit a buffer of {labels.Length}.", nameof(labels));
        }

        for (var i = 0; i < indices.Length; i++)
        {
            var index = indices[i];
            if ((uint)index >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), $"sample index {index} is outside 0..{Count - 1}.");
            }

            labels[i] = Labels[index];
        }
    }

    /// <summary>The first <paramref name="count"/> samples (for small runs and tests); the whole set when count >= Count.</summary>
    public Dataset Take(int count)
    {
        if (count < 1)
        {
            throw new InputException($"{Name}: cannot take {count} samples; the number must be at least 1.");
        }

        if (count >= Count)
        {
            return this;
        }

        return new Dataset(
            $"{Name} (first {count})", Images.AsSpan(0, count * SampleSize).ToArray(), Labels.AsSpan(0, count).ToArray(),
            sampleShape, Classes)
        {
            Source = Source,
            Normalization = Normalization,
        };
    }
}
