using System.Buffers.Binary;
using MpiPipeline.Data;
using MpiPipeline.TestData;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Data;

/// <summary>
/// <c>--dataset idx:DIR</c>, <c>cifar10:DIR</c> (and cifar100), <c>npy:DIR</c>: what they read, the class count and
/// normalization they derive, and one clear message naming the file for every kind of bad file.
/// </summary>
[TestFixture]
public sealed class FileDataSetTests
{
    private string folder = "";

    [SetUp]
    public void MakeFolder() => folder = Directory.CreateTempSubdirectory("mpipipe-datasets-").FullName;

    [TearDown]
    public void RemoveFolder() => Directory.Delete(folder, recursive: true);

    private static Dataset Load(string name, bool train = true) => DataSetRegistry.Load(name, null, train);

    private static string Error(string name, bool train = true) => Assert.Throws<InputException>(() => Load(name, train))!.Message;

    private string File(string name) => Path.Combine(folder, name);

    [Test]
    public void IdxSetOfAnyGeometryLoadsWithClassesAndStatisticsFromTheTrainingSet()
    {
        ImageSetFiles.WriteIdxSet(folder, channels: 3, side: 16, classes: 5, trainCount: 40, testCount: 10);
        var train = Load($"idx:{folder}");
        var test = Load($"IDX:{folder}", train: false);
        Assert.That(train.Geometry, Is.EqualTo(new SampleGeometry([3, 16, 16], 5)));
        Assert.That(test.Geometry, Is.EqualTo(train.Geometry));
        Assert.That((train.Count, test.Count), Is.EqualTo((40, 10)));
        var (pixels, labels) = ImageSetFiles.Generate(40, 3, 16, 5, 1);
        Assert.That(train.Labels, Is.EqualTo(labels.Select(l => (int)l).ToArray()));
        Assert.That(train.Source, Is.EqualTo(File("train-images-idx4-ubyte")));

        // Independently: each channel's mean and population std of pixel / 255 over the 40 training images.
        var plane = 16 * 16;
        for (var c = 0; c < 3; c++)
        {
            var values = Enumerable.Range(0, 40).SelectMany(i => pixels.Skip(i * 3 * plane + c * plane).Take(plane)).Select(p => p / 255.0).ToArray();
            var mean = values.Average();
            var std = Math.Sqrt(values.Select(v => (v - mean) * (v - mean)).Average());
            var index = 5 * 3 * plane + c * plane + 7; // sample 5, channel c, pixel 7
            Assert.That(train.Images[index], Is.EqualTo((pixels[index] / 255.0 - mean) / std).Within(1e-5));
            Assert.That(train.Normalization, Does.Contain(mean.ToString("0.####", System.Globalization.CultureInfo.InvariantCulture)));
        }

        // Normalized with the training statistics, each training channel has mean 0 and std 1; the test set is not re-centred.
        var first = train.Images.Where((_, i) => i % (3 * plane) < plane).ToArray();
        Assert.That(first.Average(), Is.EqualTo(0).Within(1e-4));
        Assert.That(Math.Sqrt(first.Select(v => (double)v * v).Average()), Is.EqualTo(1).Within(1e-4));
        Assert.That(train.Normalization, Does.StartWith("per channel (x / 255 - mean) / std"));
    }

    [Test]
    public void IdxFindsGzipAndOneChannelAndFloatFiles()
    {
        var (pixels, labels) = ImageSetFiles.Generate(6, 1, 5, 3, 1);
        var floats = pixels.Select(p => p * 0.5f).ToArray();
        WriteGzip("emnist-x-train-images-idx3-ubyte.gz", ImageSetFiles.IdxFloats([6, 5, 5], floats));
        WriteGzip("emnist-x-train-labels-idx1-ubyte.gz", ImageSetFiles.Idx([6], labels));
        System.IO.File.WriteAllBytes(File("emnist-x-test-images-idx3-ubyte"), ImageSetFiles.IdxFloats([2, 5, 5], floats.AsSpan(0, 50)));
        System.IO.File.WriteAllBytes(File("emnist-x-test-labels-idx1-ubyte"), ImageSetFiles.Idx([2], labels.AsSpan(0, 2)));
        var train = Load($"idx:{folder}");
        var test = Load($"idx:{folder}", train: false);
        Assert.That(train.Geometry, Is.EqualTo(new SampleGeometry([1, 5, 5], 3)));
        Assert.That(train.Normalization, Does.StartWith("(x - mean) / std"));
        // Test sample 0 is training sample 0: the same floats normalized the same way.
        Assert.That(test.Sample(0).ToArray(), Is.EqualTo(train.Sample(0).ToArray()));
    }

    [Test]
    public void RealFashionMnistReadAsIdxMatchesTheFashionMnistLoader()
    {
        var idx = Load($"idx:{FashionMnist.DefaultDirectory}", train: false);
        var fashion = FashionMnist.LoadTest();
        Assert.That(idx.Geometry, Is.EqualTo(fashion.Geometry));
        Assert.That(idx.Labels, Is.EqualTo(fashion.Labels));
        // FashionMnist's constants are the training set's statistics to 4 digits; idx computes them.
        Assert.That(idx.Normalization, Does.Contain("mean 0.286").And.Contain("std 0.353"));
        Assert.That(idx.Images.Zip(fashion.Images).Max(p => Math.Abs(p.First - p.Second)), Is.LessThan(2e-3));
    }

    [Test]
    public void IdxErrorsNameTheFileAndTheProblem()
    {
        ImageSetFiles.WriteIdxSet(folder, channels: 2, side: 4, classes: 3, trainCount: 9, testCount: 3);
        var images = File("train-images-idx4-ubyte");
        var labels = File("train-labels-idx1-ubyte");
        var testLabels = File("t10k-labels-idx1-ubyte");
        var good = System.IO.File.ReadAllBytes(images);

        System.IO.File.WriteAllBytes(images, good[..^5]);
        Assert.That(Error($"idx:{folder}"), Does.StartWith($"{images}: truncated file").And.Contain("9 x 2 x 4 x 4 unsigned bytes"));
        System.IO.File.WriteAllBytes(images, [0x12, 0x34, .. good[2..]]);
        Assert.That(Error($"idx:{folder}"), Does.StartWith($"{images}: wrong magic number"));
        System.IO.File.WriteAllBytes(images, [0, 0, 0x0C, .. good[3..]]);
        Assert.That(Error($"idx:{folder}"), Does.StartWith($"{images}: IDX element type 0x0C (int32) is not supported"));
        System.IO.File.WriteAllBytes(images, good);

        System.IO.File.WriteAllBytes(labels, ImageSetFiles.Idx([8], new byte[8]));
        Assert.That(Error($"idx:{folder}"), Is.EqualTo($"{labels} holds 8 labels but {images} holds 9 samples; the counts must match"));
        System.IO.File.WriteAllBytes(labels, ImageSetFiles.Idx([9], new byte[9]));
        Assert.That(Error($"idx:{folder}"), Does.StartWith($"{labels}: every label is 0; a classifier needs at least two classes"));
        System.IO.File.WriteAllBytes(labels, ImageSetFiles.Idx([9], [0, 1, 2, 0, 1, 2, 0, 1, 2]));
        Assert.That(Load($"idx:{folder}").Classes, Is.EqualTo(3));

        System.IO.File.WriteAllBytes(testLabels, ImageSetFiles.Idx([3], [0, 3, 1]));
        Assert.That(Error($"idx:{folder}", train: false),
            Is.EqualTo($"{testLabels}: label 3 at index 1 is outside 0..2 (the classes the training labels in {labels} define)"));
        System.IO.File.WriteAllBytes(testLabels, ImageSetFiles.Idx([3], [0, 1, 1]));
        System.IO.File.WriteAllBytes(File("t10k-images-idx4-ubyte"), ImageSetFiles.Idx([3, 2, 4, 5], new byte[120]));
        Assert.That(Error($"idx:{folder}", train: false), Does.Contain("test samples are 2x4x5, the training samples in").And.Contain("2x4x4"));

        System.IO.File.WriteAllBytes(File("train-images-copy-idx4-ubyte"), good);
        Assert.That(Error($"idx:{folder}"), Does.Contain("2 files could be the training images (train-images-copy-idx4-ubyte, train-images-idx4-ubyte)"));
        Assert.That(Error("idx:/nonexistent/idx"), Does.Contain("the folder /nonexistent/idx does not exist"));
        Assert.That(Error("idx:"), Does.Contain("no folder given; the form is idx:DIR"));
    }

    [Test]
    public void Cifar10ReadsEveryBatchInOrderAndFindsTheUnpackedFolder()
    {
        var unpacked = Directory.CreateDirectory(File("cifar-10-batches-bin")).FullName;
        ImageSetFiles.WriteCifar10(unpacked, batches: 2, perBatch: 6, testCount: 4);
        // data_batch_10 sorts after data_batch_2 by number, not by name.
        var (pixels, labels) = ImageSetFiles.Generate(3, 3, 32, 10, 10);
        System.IO.File.WriteAllBytes(Path.Combine(unpacked, "data_batch_10.bin"), ImageSetFiles.CifarRecords(pixels, labels));
        var train = Load($"cifar10:{folder}");
        Assert.That(train.Geometry, Is.EqualTo(new SampleGeometry([3, 32, 32], 10)));
        int[] expected = [.. ImageSetFiles.Generate(6, 3, 32, 10, 1).Labels, .. ImageSetFiles.Generate(6, 3, 32, 10, 2).Labels, .. labels];
        Assert.That(train.Labels, Is.EqualTo(expected));
        Assert.That(Load($"cifar10:{unpacked}", train: false).Count, Is.EqualTo(4));
        Assert.That(train.Normalization, Does.StartWith("per channel (x / 255 - mean) / std"));
    }

    [Test]
    public void Cifar100TakesTheFineLabelOrWithCoarseTheSuperclass()
    {
        var (pixels, fine) = ImageSetFiles.Generate(5, 3, 32, 100, 3);
        byte[] coarse = [.. fine.Select(l => (byte)(l / 5))];
        System.IO.File.WriteAllBytes(File("train.bin"), ImageSetFiles.CifarRecords(pixels, fine, coarse));
        System.IO.File.WriteAllBytes(File("test.bin"), ImageSetFiles.CifarRecords(pixels, fine, coarse));
        var fineSet = Load($"cifar100:{folder}");
        var coarseSet = Load($"cifar100-coarse:{folder}", train: false);
        Assert.That((fineSet.Classes, coarseSet.Classes), Is.EqualTo((100, 20)));
        Assert.That(fineSet.Labels, Is.EqualTo(fine.Select(l => (int)l).ToArray()));
        Assert.That(coarseSet.Labels, Is.EqualTo(coarse.Select(l => (int)l).ToArray()));
        Assert.That(fineSet.Images, Is.EqualTo(coarseSet.Images), "the pixels follow the two label bytes");
    }

    [Test]
    public void CifarErrorsNameTheFileAndTheProblem()
    {
        ImageSetFiles.WriteCifar10(folder, batches: 2, perBatch: 3, testCount: 2);
        var batch = File("data_batch_2.bin");
        var good = System.IO.File.ReadAllBytes(batch);
        System.IO.File.WriteAllBytes(batch, good[..^100]);
        Assert.That(Error($"cifar10:{folder}"), Does.StartWith($"{batch}: 9119 bytes is not a whole number of CIFAR-10 records of 3073 bytes"));
        var relabelled = good.ToArray();
        relabelled[3073] = 10;
        System.IO.File.WriteAllBytes(batch, relabelled);
        Assert.That(Error($"cifar10:{folder}"), Does.StartWith($"{batch}: label 10 in record 1 is outside 0..9 (CIFAR-10 has 10 classes)"));
        System.IO.File.WriteAllBytes(batch, good);
        System.IO.File.Delete(File("test_batch.bin"));
        Assert.That(Error($"cifar10:{folder}", train: false), Does.Contain("no test_batch.bin in").And.Contain(CifarBinary.Website));
        Assert.That(Error($"cifar100:{folder}"), Does.Contain("no train.bin in"));
    }

    [Test]
    public void NpyReadsFloatAndByteArraysOfAnyShape()
    {
        ImageSetFiles.WriteNpySet(folder, [2, 3, 4], classes: 4, trainCount: 12, testCount: 5);
        var train = Load($"npy:{folder}");
        Assert.That(train.Geometry, Is.EqualTo(new SampleGeometry([2, 3, 4], 4)));
        Assert.That(Load($"npy:{folder}", train: false).Count, Is.EqualTo(5));
        Assert.That(train.Normalization, Does.StartWith("per channel (x - mean) / std"));

        // uint8 N x H x W is one channel, scaled by 1 / 255; labels of any integer type; y of shape (N, 1).
        byte[] x = [.. Enumerable.Range(0, 4 * 6).Select(i => (byte)(i * 10))];
        System.IO.File.WriteAllBytes(File("x_train.npy"), NpyFile.Encode("|u1", [4, 2, 3], x));
        System.IO.File.WriteAllBytes(File("y_train.npy"), NpyFile.Encode("<i4", [4, 1], [2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
        var bytes = Load($"npy:{folder}");
        Assert.That(bytes.Geometry, Is.EqualTo(new SampleGeometry([1, 2, 3], 3)));
        Assert.That(bytes.Labels, Is.EqualTo(new[] { 2, 0, 1, 0 }));
        var mean = x.Average(v => v / 255.0);
        var std = Math.Sqrt(x.Average(v => (v / 255.0 - mean) * (v / 255.0 - mean)));
        Assert.That(bytes.Images[5], Is.EqualTo((50 / 255.0 - mean) / std).Within(1e-5));
        Assert.That(bytes.Normalization, Does.StartWith("(x / 255 - mean) / std"));
    }

    [Test]
    public void NpyHeaderIsParsedAndWhatIsNotReadIsRefusedClearly()
    {
        ImageSetFiles.WriteNpySet(folder, [6], classes: 3, trainCount: 4, testCount: 2);
        var x = File("x_train.npy");
        var y = File("y_train.npy");
        var good = System.IO.File.ReadAllBytes(x);

        // Keys in another order, double quotes, no trailing comma: still numpy's dict literal.
        WriteHeader(x, "{\"shape\": (4, 6), \"fortran_order\": False, \"descr\": \"<f4\"}", good);
        Assert.That(Load($"npy:{folder}").Geometry, Is.EqualTo(new SampleGeometry([6], 3)));
        WriteHeader(x, "{'descr': '>f4', 'fortran_order': False, 'shape': (4, 6), }", good);
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{x}: dtype '>f4' is not supported (a big-endian dtype"));
        WriteHeader(x, "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 6), }", good);
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{x}: a Fortran-ordered array"));
        WriteHeader(x, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", good);
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{x}: a structured dtype"));
        WriteHeader(x, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, -6), }", good);
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{x}: the .npy header is not a dict literal numpy writes"));
        WriteHeader(x, "{'descr': '<c8', 'fortran_order': False, 'shape': (4, 6), }", good);
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{x}: dtype '<c8' is not supported"));
        System.IO.File.WriteAllBytes(x, good[..^4]);
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{x}: truncated: shape (4, 6) of '<f4' needs 96 bytes of data, the file holds 92"));
        System.IO.File.WriteAllBytes(x, [.. "PK"u8, .. good[2..]]);
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{x}: not a .npy file"));
        System.IO.File.WriteAllBytes(x, good);

        System.IO.File.WriteAllBytes(y, NpyFile.Encode("<i8", [3], new byte[24]));
        Assert.That(Error($"npy:{folder}"), Is.EqualTo($"{y} holds 3 labels but {x} holds 4 samples; the counts must match"));
        System.IO.File.WriteAllBytes(y, NpyFile.Encode("<i2", [4], [1, 0, 255, 255, 0, 0, 2, 0]));
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{y}: label -1 at index 1 is outside"));
        System.IO.File.WriteAllBytes(y, NpyFile.Encode("<f4", [4], new byte[16]));
        Assert.That(Error($"npy:{folder}"), Does.StartWith($"{y}: labels of dtype '<f4'; y takes integers"));
        System.IO.File.WriteAllBytes(y, NpyFile.Encode("<i8", [4], new byte[] { 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0 }.Concat(new byte[16]).ToArray()));
        Assert.That(Load($"npy:{folder}").Classes, Is.EqualTo(3));
        System.IO.File.Delete(File("x_test.npy"));
        Assert.That(Error($"npy:{folder}", train: false), Does.Contain("x_test.npy not found in"));
    }

    [Test]
    public void DataNamesTheFashionMnistFolderOnlyAndTheRegistryListsEveryKind()
    {
        Assert.That(DataSetRegistry.Names, Is.EqualTo(new[]
            { "fashion-mnist", "synthetic:CxHxW:K", "idx:DIR", "cifar10:DIR", "cifar100:DIR", "cifar100-coarse:DIR", "npy:DIR" }));
        var options = new TrainOptions { DataSet = $"idx:{folder}", DataDirectory = "/data/fm" };
        Assert.That(() => options.Validate(2), Throws.TypeOf<InputException>().With.Message.EqualTo(
            $"--dataset idx:{folder} names its own folder; --data /data/fm is the folder of fashion-mnist: give one of them"));
        Assert.That(() => (options with { DataDirectory = null }).Validate(2), Throws.Nothing);
        Assert.That(() => (options with { DataSet = "fashion-mnist" }).Validate(2), Throws.Nothing);
        Assert.That(() => new global::MpiPipeline.Smoothing.PprsOptions { DataSet = $"cifar10:{folder}", DataDirectory = "/data/fm" }.Validate(1),
            Throws.TypeOf<InputException>().With.Message.Contains("names its own folder"));
    }

    [Test]
    public void TheRunHeaderStatesTheFilesAndTheNormalization()
    {
        ImageSetFiles.WriteIdxSet(folder, channels: 3, side: 8, classes: 4, trainCount: 8, testCount: 4);
        var note = TrainingLoop.DataNote(Load($"idx:{folder}").Take(5));
        Assert.That(note, Does.StartWith($"3x8x8 samples in 4 classes from {File("train-images-idx4-ubyte")}; normalized per channel (x / 255 - mean) / std with the training set's mean "));
        Assert.That(TrainingLoop.DataNote(Load("synthetic:3x8x8:4")), Is.Null);
    }

    private void WriteGzip(string name, byte[] content)
    {
        using var file = System.IO.File.Create(File(name));
        using var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest);
        gzip.Write(content);
    }

    /// <summary>The data of <paramref name="npy"/> under another header (format 1.0, padded as numpy pads).</summary>
    private static void WriteHeader(string path, string dict, byte[] npy)
    {
        var dataStart = 10 + BinaryPrimitives.ReadUInt16LittleEndian(npy.AsSpan(8));
        var padded = dict + new string(' ', (64 - (10 + dict.Length + 1) % 64) % 64) + "\n";
        var header = new byte[10];
        npy.AsSpan(0, 8).CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)padded.Length);
        System.IO.File.WriteAllBytes(path, [.. header, .. System.Text.Encoding.Latin1.GetBytes(padded), .. npy[dataStart..]]);
    }
}
