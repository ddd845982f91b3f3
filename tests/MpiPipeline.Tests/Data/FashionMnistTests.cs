using System.Diagnostics;
using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Data;

/// <summary>The real Fashion-MNIST from the Debian package dataset-fashion-mnist (installed by `make deps`).</summary>
[TestFixture]
public sealed class FashionMnistTests
{
    private static readonly Lazy<(Dataset Train, Dataset Test)> RealData = new(() =>
    {
        var watch = Stopwatch.StartNew();
        var train = FashionMnist.LoadTrain();
        var test = FashionMnist.LoadTest();
        TestContext.Progress.WriteLine($"Fashion-MNIST loaded in {watch.Elapsed.TotalSeconds:F2} s");
        return (train, test);
    });

    private static Dataset Train => RealData.Value.Train;

    private static Dataset Test => RealData.Value.Test;

    [Test]
    public void HasTheKnownCountsAndShape()
    {
        Assert.That(Train.Count, Is.EqualTo(60_000));
        Assert.That(Test.Count, Is.EqualTo(10_000));
        Assert.That(Train.SampleShape, Is.EqualTo(new[] { 1, 28, 28 }));
        Assert.That(Train.SampleSize, Is.EqualTo(784));
        Assert.That(Train.Images, Has.Length.EqualTo(60_000 * 784));
        Assert.That(Train.Classes, Is.EqualTo(10));
    }

    [Test]
    public void TrainingSetHas6000OfEachClass()
    {
        var histogram = new int[10];
        foreach (var label in Train.Labels)
        {
            histogram[label]++;
        }

        Assert.That(histogram, Is.All.EqualTo(6000));
    }

    [Test]
    public void FirstTrainingImageIsAnAnkleBoot()
    {
        Assert.That(Train.Labels[0], Is.EqualTo(9));
        Assert.That(FashionMnist.ClassNames[Train.Labels[0]], Is.EqualTo("Ankle boot"));
    }

    [Test]
    public void PixelsAreNormalizedWithTheTrainingMeanAndStd()
    {
        const float black = (0f - FashionMnist.PixelMean) / FashionMnist.PixelStd;
        const float white = (1f - FashionMnist.PixelMean) / FashionMnist.PixelStd;
        Assert.That(black, Is.EqualTo(-0.81020).Within(1e-4));
        Assert.That(white, Is.EqualTo(2.02266).Within(1e-4));
        Assert.That(Train.Images.Min(), Is.EqualTo(black));
        Assert.That(Train.Images.Max(), Is.EqualTo(white));

        double sum = 0, squares = 0;
        foreach (var value in Train.Images)
        {
            sum += value;
            squares += (double)value * value;
        }

        var mean = sum / Train.Images.Length;
        var std = Math.Sqrt(squares / Train.Images.Length - mean * mean);
        Assert.That(mean, Is.EqualTo(0).Within(0.01), "the constants are the training set's mean");
        Assert.That(std, Is.EqualTo(1).Within(0.01), "the constants are the training set's std");
    }

    [Test]
    public void TakeKeepsTheFirstSamples()
    {
        var first = Train.Take(100);
        Assert.That(first.Count, Is.EqualTo(100));
        Assert.That(first.Labels, Is.EqualTo(Train.Labels[..100]));
        Assert.That(first.Sample(99).ToArray(), Is.EqualTo(Train.Sample(99).ToArray()));
    }

    [Test]
    public void GeometryIsOneChannelOf28x28InTenClasses() =>
        Assert.That(Train.Geometry, Is.EqualTo(new SampleGeometry([1, 28, 28], 10)));
}

/// <summary>Fashion-MNIST loading from generated directories: file names, and each fault across the two files.</summary>
[TestFixture]
public sealed class FashionMnistFileTests
{
    private IdxFiles files = null!;

    [SetUp]
    public void CreateDirectory() => files = new IdxFiles();

    [TearDown]
    public void DeleteDirectory() => files.Dispose();

    [Test]
    public void AcceptsUncompressedAndGzipNames()
    {
        files.Write("t10k-images-idx3-ubyte", IdxFiles.Images(3, 28, 28, _ => 255));
        files.Write("t10k-labels-idx1-ubyte.gz", IdxFiles.Labels(4, 5, 6), gzip: true);

        var test = FashionMnist.LoadTest(files.Directory);

        Assert.That(test.Labels, Is.EqualTo(new[] { 4, 5, 6 }));
        Assert.That(test.Images, Is.All.EqualTo((1f - 0.2860f) / 0.3530f));
        Assert.That(test.Name, Is.EqualTo("Fashion-MNIST test"));
    }

    [Test]
    public void MissingFileSaysWhereAndWhichPackage()
    {
        files.Write("train-labels-idx1-ubyte", IdxFiles.Labels(1));
        var ex = Assert.Throws<InputException>(() => FashionMnist.LoadTrain(files.Directory))!;
        Assert.That(ex.Message, Does.Contain("training images not found in " + files.Directory)
            .And.Contain("train-images-idx3-ubyte.gz").And.Contain("dataset-fashion-mnist").And.Contain("--data DIR"));
    }

    [Test]
    public void MissingDirectoryIsNamed()
    {
        var directory = Path.Combine(files.Directory, "absent");
        var ex = Assert.Throws<InputException>(() => FashionMnist.LoadTest(directory))!;
        Assert.That(ex.Message, Does.Contain($"the directory {directory} does not exist").And.Contain("dataset-fashion-mnist"));
    }

    [Test]
    public void CountMismatchNamesBothFiles()
    {
        var images = files.Write("train-images-idx3-ubyte", IdxFiles.Images(3, 28, 28));
        var labels = files.Write("train-labels-idx1-ubyte", IdxFiles.Labels(1, 2));
        var ex = Assert.Throws<InputException>(() => FashionMnist.LoadTrain(files.Directory))!;
        Assert.That(ex.Message, Does.Contain($"{labels} holds 2 labels but {images} holds 3 images"));
    }

    [Test]
    public void WrongImageSizeIsReported()
    {
        var images = files.Write("train-images-idx3-ubyte", IdxFiles.Images(2, 32, 32));
        files.Write("train-labels-idx1-ubyte", IdxFiles.Labels(1, 2));
        var ex = Assert.Throws<InputException>(() => FashionMnist.LoadTrain(files.Directory))!;
        Assert.That(ex.Message, Does.Contain(images).And.Contain("32x32").And.Contain("28x28"));
    }

    [Test]
    public void LabelOutsideTheClassesIsReported()
    {
        files.Write("train-images-idx3-ubyte", IdxFiles.Images(2, 28, 28));
        var labels = files.Write("train-labels-idx1-ubyte", IdxFiles.Labels(1, 10));
        var ex = Assert.Throws<InputException>(() => FashionMnist.LoadTrain(files.Directory))!;
        Assert.That(ex.Message, Does.Contain(labels).And.Contain("label 10 at index 1"));
    }
}
