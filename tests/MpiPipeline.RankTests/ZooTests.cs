using MpiPipeline.TestData;
using MpiPipeline.Training;

namespace MpiPipeline.RankTests;

/// <summary>
/// The CIFAR models and model files through real jobs: resnet20 trains with PSGD on generated CIFAR-10 binary files, and its
/// BatchNorm running statistics, which each replica updates from its own batches, are averaged over the replicas
/// before the evaluation (the checkpoint of the last step holds each worker's own, the saved buffers their mean).
/// </summary>
public sealed class ZooTests : RankFixture
{
    /// <summary>resnet20's BatchNorm channels: 16 (stem) + 6 x 16 + 6 x 32 + 32 + 6 x 64 + 64 (shortcuts): 784, each
    /// with a running mean and a running variance.</summary>
    private const int ResNet20Buffers = 2 * (16 + 6 * 16 + 6 * 32 + 32 + 6 * 64 + 64);

    [TestCaseSource(nameof(Flavors))]
    public void ResNet20TrainsAndEvaluatesWithTheReplicasAveragedStatistics(MpiFlavor flavor)
    {
        var folder = NewStem("checkpoints");
        var cifar = NewStem("cifar10");
        Directory.CreateDirectory(cifar);
        ImageSetFiles.WriteCifar10(cifar, batches: 2, perBatch: 128, testCount: 64);
        var run = Train(flavor, 2, "resnet20",
        [
            "--model", "resnet20", "--dataset", $"cifar10:{cifar}", "--train-samples", "256", "--test-samples", "64", "--batch", "16",
            "--epochs", "1", "--max-steps", "2", "--threads", "1", "--lr", "0.05", "--curve-every", "1", "--algo", "psgd",
            "--checkpoint", folder, "--checkpoint-every", "2",
        ]);

        Assert.That(run.Parameters, Has.Length.EqualTo(272_474), "resnet20 for 3x32x32 samples and 10 classes");
        var curve = run.Json.GetProperty("lossCurve").EnumerateArray().Select(p => p.GetProperty("loss").GetDouble()).ToArray();
        Assert.That(curve, Has.Length.EqualTo(2).And.All.Matches<double>(double.IsFinite), run.Output);
        var accuracy = run.Json.GetProperty("finalTestAccuracy").GetDouble();
        Assert.That(accuracy, Is.InRange(0.0, 1.0), run.Output);

        // The checkpoint after the last step is taken before the end-of-training averaging: each worker's own statistics.
        var last = Path.Combine(folder, CheckpointStore.FileName(2));
        var saved = Checkpoint.Parse(File.ReadAllBytes(last), last);
        var (own0, own1) = (saved.Get("worker 0/buffers"), saved.Get("worker 1/buffers"));
        Assert.That(own0, Has.Length.EqualTo(ResNet20Buffers));
        Assert.That(MaxDifference(own0, own1), Is.GreaterThan(1e-3), "the replicas saw different batches, so their statistics differ");

        // What the evaluation used, as saved next to the parameters: the mean of the two (a + b is both MPIs' sum with
        // 2 ranks, and the halving is exact, so the mean is bit for bit).
        var evaluated = Floats(run.TracePath.Replace(".trace.json", ".bin.buffers", StringComparison.Ordinal));
        var mean = own0.Select((v, i) => (v + own1[i]) * 0.5f).ToArray();
        Assert.That(evaluated, Is.EqualTo(mean));
    }

    /// <summary>A model file with a mistake: rank 0 names the file, the line and the layer; every rank exits non-zero.</summary>
    [Test]
    public void ABadModelFileIsOneClearError()
    {
        var model = NewStem("model") + ".txt";
        File.WriteAllText(model, "flatten\nresidual {\n  linear 784 784\n  relu 3\n}\nlinear 784 10\n");
        var output = NewStem("never") + ".json";

        var result = MpiLauncher.Launch(MpiFlavor.Mpich, 2, MpiLauncher.Mpipipe,
            ["train", "--model", $"spec:{model}", "--train-samples", "640", "--test-samples", "100", "--threads", "1", "--output", output], Prompt * 3);

        AssertStoppedByBadInput(result, Prompt, output);
        Assert.That(MpiLauncher.Count(result.Output, $"rank 0: model file {model}, line 4 ('relu 3'): layer 1.1 (relu): takes 0 arguments (none), got 1"),
            Is.EqualTo(1), result.ToString());
    }
}
