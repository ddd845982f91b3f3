using MpiPipeline.TestData;

namespace MpiPipeline.RankTests;

/// <summary>
/// Data sets read from files, end to end under both MPIs: a generated IDX set of another geometry than
/// Fashion-MNIST (3x16x16, 5 classes) trains with psgd on 2 ranks to well above chance, with the geometry, the class
/// count and the training set's normalization in the run header; then, sharing the case, a brief CIFAR-10 run
/// (MPICH) or npy run (Open MPI), and a model that cannot take the data's shape: every rank exits non-zero promptly and
/// rank 0 alone names the data's file.
/// </summary>
[TestFixture]
public sealed class DataSetTests : RankFixture
{
    private string idx = "", cifar = "", npy = "";

    [OneTimeSetUp]
    public void WriteDataSets()
    {
        idx = Directory.CreateDirectory(Path.Combine(WorkDirectory, "idx")).FullName;
        cifar = Directory.CreateDirectory(Path.Combine(WorkDirectory, "cifar")).FullName;
        npy = Directory.CreateDirectory(Path.Combine(WorkDirectory, "npy")).FullName;
        ImageSetFiles.WriteIdxSet(idx, channels: 3, side: 16, classes: 5, trainCount: 640, testCount: 200);
        ImageSetFiles.WriteCifar10(cifar, batches: 2, perBatch: 64, testCount: 32);
        ImageSetFiles.WriteNpySet(npy, [12], classes: 3, trainCount: 96, testCount: 24);
    }

    [TestCaseSource(nameof(Flavors))]
    public void FileDataSetsTrainEndToEnd(MpiFlavor flavor)
    {
        string[] common = ["--algo", "psgd", "--threads", "1", "--batch", "32"];
        var run = Train(flavor, 2, "idx", [.. common, "--dataset", $"idx:{idx}", "--model", "cnn", "--epochs", "2", "--lr", "0.05"]);
        Assert.That(run.Json.GetProperty("options").GetProperty("dataset").GetString(), Is.EqualTo($"idx:{idx}"));
        Assert.That(run.Json.GetProperty("finalTestAccuracy").GetDouble(), Is.GreaterThan(0.6), "5 classes: chance is 0.2. " + run.Output);
        Assert.That(run.Output, Does.Contain($"3x16x16 samples in 5 classes from {Path.Combine(idx, "train-images-idx4-ubyte")}; " +
            "normalized per channel (x / 255 - mean) / std with the training set's mean "));

        var (name, brief, header) = flavor == MpiFlavor.Mpich
            ? ("cifar10", $"cifar10:{cifar}", $"3x32x32 samples in 10 classes from {Path.Combine(cifar, "data_batch_1.bin")} .. data_batch_2.bin")
            : ("npy", $"npy:{npy}", $"12 samples in 3 classes from {Path.Combine(npy, "x_train.npy")}; normalized (x - mean) / std");
        var briefRun = Train(flavor, 2, name, [.. common, "--dataset", brief, "--model", "mlp", "--max-steps", "3"]);
        Assert.That(briefRun.Output, Does.Contain(header));
        Assert.That(briefRun.Json.GetProperty("totals").GetProperty("steps").GetInt64(), Is.EqualTo(3), briefRun.Output);

        var output = NewStem("cnn-on-npy") + ".json";
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe,
            ["train", .. common, "--dataset", $"npy:{npy}", "--model", "cnn", "--output", output], TimeSpan.FromSeconds(60));
        AssertStoppedByBadInput(result, TimeSpan.FromSeconds(15), output);
        Assert.That(MpiLauncher.Count(result.Output, $"the samples come from {Path.Combine(npy, "x_train.npy")}"), Is.EqualTo(1), result.ToString());
    }
}
