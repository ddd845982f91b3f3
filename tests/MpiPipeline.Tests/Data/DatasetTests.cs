using MpiPipeline.Data;
using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Data;

[TestFixture]
public sealed class DatasetTests
{
    /// <summary>Four samples of shape 1x2x2; sample i holds 10i, 10i+1, 10i+2, 10i+3 and label i.</summary>
    private static Dataset Small() => new(
        "small",
        Enumerable.Range(0, 4).SelectMany(i => Enumerable.Range(0, 4).Select(k => 10f * i + k)).ToArray(),
        [0, 1, 2, 3],
        [1, 2, 2],
        classes: 4);

    [Test]
    public void CopyBatchGathersTheIndexedSamples()
    {
        var images = new float[3 * 4];
        var labels = new int[3];

        Small().CopyBatch([2, 0, 2], images, labels);

        Assert.That(images, Is.EqualTo(new float[] { 20, 21, 22, 23, 0, 1, 2, 3, 20, 21, 22, 23 }));
        Assert.That(labels, Is.EqualTo(new[] { 2, 0, 2 }));
    }

    [Test]
    public void CopyBatchRejectsSmallBuffersAndBadIndices()
    {
        var data = Small();
        Assert.Throws<ArgumentException>(() => data.CopyBatch([0, 1], new float[7], new int[2]));
        Assert.Throws<ArgumentException>(() => data.CopyBatch([0, 1], new float[8], new int[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => data.CopyBatch([4], new float[4], new int[1]));
    }

    [Test]
    public void CopyLabelsTakesTheIndexedLabelsAndChecksThem()
    {
        var labels = new int[3];
        Small().CopyLabels([2, 0, 2], labels);
        Assert.That(labels, Is.EqualTo(new[] { 2, 0, 2 }));
        Assert.Throws<ArgumentException>(() => Small().CopyLabels([0, 1], new int[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Small().CopyLabels([4], new int[1]));
    }

    [Test]
    public void TakeCopiesTheFirstSamplesAndKeepsTheShape()
    {
        var data = Small();
        var first = data.Take(2);
        Assert.That(first.Count, Is.EqualTo(2));
        Assert.That(first.Images, Is.EqualTo(new float[] { 0, 1, 2, 3, 10, 11, 12, 13 }));
        Assert.That(first.SampleShape, Is.EqualTo(new[] { 1, 2, 2 }));
        Assert.That(first.Name, Is.EqualTo("small (first 2)"));
        Assert.That(data.Take(10), Is.SameAs(data));
        Assert.Throws<InputException>(() => data.Take(0));
    }

    [Test]
    public void SampleShapeIsACopy()
    {
        var data = Small();
        data.SampleShape[0] = 99;
        Assert.That(data.SampleShape, Is.EqualTo(new[] { 1, 2, 2 }));
    }

    [Test]
    public void ImagesMustMatchLabelsTimesSampleSize() =>
        Assert.Throws<ArgumentException>(() => _ = new Dataset("bad", new float[7], [0, 1], [1, 2, 2], 2));
}
