using System.Buffers.Binary;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

/// <summary>The checkpoint file: what is written reads back exactly; a changed byte, a file cut short, another
/// format or another file are each a clear InputException; the folder keeps the newest K; interval parsing.</summary>
[TestFixture]
public sealed class CheckpointTests
{
    private static Checkpoint Sample()
    {
        var header = new CheckpointHeader(
            Step: 12, Algorithm: "psgd", Workers: 2, Stages: 0, Replicas: 0, Model: "mlp", DataSet: "fashion-mnist",
            Layers: [new("flatten", 0), new("linear 784 3", 2355), new("relu", 0), new("linear 3 2", 8)],
            Optimizer: "sgd", OptimizerTensors: 1, OptimizerStepCount: 0, PerWorker: false, SkippedSteps: [3, 7],
            Options: new Dictionary<string, string> { ["lr"] = "0.05", ["batch"] = "64" });
        var checkpoint = new Checkpoint(header);
        var flat = Enumerable.Range(0, 2363).Select(i => MathF.Sin(i) * 1e-3f).ToArray();
        flat[5] = float.NaN;
        flat[6] = -0f;
        flat[7] = float.Epsilon;
        checkpoint.AddPerLayer("parameters", flat);
        checkpoint.AddPerLayer("optimizer 0", flat.Select(v => v * 2).ToArray());
        checkpoint.Add("worker 1/residual", [1f, 2f, 3f]);
        return checkpoint;
    }

    [Test]
    public void RoundTripKeepsTheHeaderAndEveryBit()
    {
        var original = Sample();
        var bytes = original.Serialize();
        var read = Checkpoint.Parse(bytes, "x.ckpt");

        Assert.That(bytes.AsSpan(0, 8).ToArray(), Is.EqualTo("MPPCKPT\n"u8.ToArray()));
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)), Is.EqualTo(Checkpoint.FormatVersion));
        var (h, r) = (original.Header, read.Header);
        Assert.That((r.Step, r.Algorithm, r.Workers, r.Model, r.DataSet, r.Optimizer, r.OptimizerTensors, r.PerWorker),
            Is.EqualTo((h.Step, h.Algorithm, h.Workers, h.Model, h.DataSet, h.Optimizer, h.OptimizerTensors, h.PerWorker)));
        Assert.That(r.Layers, Is.EqualTo(h.Layers));
        Assert.That(r.SkippedSteps, Is.EqualTo(h.SkippedSteps));
        Assert.That(r.Options, Is.EquivalentTo(h.Options));
        Assert.That(read.TensorNames, Is.EqualTo(original.TensorNames));
        foreach (var name in original.TensorNames)
        {
            Assert.That(Bits(read.Get(name)), Is.EqualTo(Bits(original.Get(name))), name);
        }

        // Per layer: layers [1, 4) back to back are the flat buffer from offset 0 (layer 0 has no parameters).
        Assert.That(Bits(read.GetLayers("parameters", 1, 3)), Is.EqualTo(Bits(original.GetLayers("parameters", 0, 4))));
        Assert.That(read.Get(Checkpoint.LayerName("parameters", 3)), Has.Length.EqualTo(8));
    }

    [Test]
    public void AnyChangedByteIsAChecksumError()
    {
        var bytes = Sample().Serialize();
        foreach (var offset in new[] { 24, bytes.Length / 2, bytes.Length - 40, bytes.Length - 1 })
        {
            var damaged = bytes.ToArray();
            damaged[offset] ^= 0x10;
            var error = Assert.Throws<InputException>(() => Checkpoint.Parse(damaged, "x.ckpt"))!;
            Assert.That(error.Message, Is.EqualTo("x.ckpt is corrupt: its SHA-256 checksum does not match its contents"), $"byte {offset}");
        }
    }

    [Test]
    public void AFileCutShortIsTruncated()
    {
        var bytes = Sample().Serialize();
        foreach (var length in new[] { 12, 20, bytes.Length / 2, bytes.Length - 1 })
        {
            var error = Assert.Throws<InputException>(() => Checkpoint.Parse(bytes.AsSpan(0, length), "x.ckpt"))!;
            Assert.That(error.Message, Does.StartWith($"x.ckpt is truncated: {length} bytes"), $"length {length}");
        }

        var longer = Assert.Throws<InputException>(() => Checkpoint.Parse([.. bytes, 0], "x.ckpt"))!;
        Assert.That(longer.Message, Does.StartWith("x.ckpt is corrupt"));
    }

    [Test]
    public void AnotherFileOrFormatIsNamed()
    {
        Assert.That(Assert.Throws<InputException>(() => Checkpoint.Parse("{\"step\": 1}"u8, "r.json"))!.Message,
            Is.EqualTo("r.json is not an MpiPipeline checkpoint (it does not start with the checkpoint magic)"));
        var bytes = Sample().Serialize();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 99);
        Assert.That(Assert.Throws<InputException>(() => Checkpoint.Parse(bytes, "x.ckpt"))!.Message,
            Is.EqualTo($"x.ckpt is checkpoint format version 99; this build reads version {Checkpoint.FormatVersion}"));
    }

    [Test]
    public void AnotherModelIsRefusedNamingBoth()
    {
        var header = Sample().Header;
        var error = Assert.Throws<InputException>(() => CheckpointStore.CheckModel(header, "x.ckpt", "cnn", [new("linear 784 10", 7850)]))!;
        Assert.That(error.Message, Does.Contain("x.ckpt holds another model: 'mlp'").And.Contain("this run trains 'cnn' with layers [linear 784 10 (7850)]"));
        Assert.DoesNotThrow(() => CheckpointStore.CheckModel(header, "x.ckpt", "mlp", [.. header.Layers]));
    }

    [Test]
    public void ChangedTrajectoryOptionsAreRefused()
    {
        var header = Sample().Header with { Options = new Dictionary<string, string> { ["lr"] = "0.05", ["batch"] = "64" } };
        var error = Assert.Throws<InputException>(() => CheckpointStore.CheckOptions(header, "x.ckpt",
            new Dictionary<string, string> { ["lr"] = "0.1", ["batch"] = "64" }, 100))!;
        Assert.That(error.Message, Is.EqualTo("--resume: x.ckpt was made with --lr 0.05, this run gives --lr 0.1; a resumed run must keep the options that decide its trajectory"));
        var past = Assert.Throws<InputException>(() => CheckpointStore.CheckOptions(header, "x.ckpt", new Dictionary<string, string>(header.Options), 10))!;
        Assert.That(past.Message, Does.Contain("is at step 12, past this run's 10 steps"));
    }

    [Test]
    public void TheFolderKeepsTheNewestAndRemovesStaleTemporaries()
    {
        var folder = Directory.CreateTempSubdirectory("mpipipe-ckpt-").FullName;
        try
        {
            var stale = Path.Combine(folder, ".step-000000003.ckpt.123.abc.tmp");
            File.WriteAllText(stale, "half");
            File.WriteAllText(Path.Combine(folder, "notes.txt"), "not a checkpoint");
            var sample = Sample();
            foreach (var step in new long[] { 2, 4, 6 })
            {
                var checkpoint = new Checkpoint(sample.Header with { Step = step });
                CheckpointStore.Save(folder, checkpoint, keep: 2);
            }

            Assert.That(CheckpointStore.List(folder).Select(c => c.Step), Is.EqualTo(new long[] { 4, 6 }));
            Assert.That(File.Exists(stale), Is.False);
            Assert.That(Directory.GetFiles(folder).Select(Path.GetFileName), Is.EquivalentTo(new[] { "notes.txt", "step-000000004.ckpt", "step-000000006.ckpt" }));
            Assert.That(Checkpoint.Parse(File.ReadAllBytes(Path.Combine(folder, "step-000000006.ckpt")), "f").Header.Step, Is.EqualTo(6));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestCase("epoch", 0L, true)]
    [TestCase("25", 25L, false)]
    public void IntervalParses(string text, long steps, bool eachEpoch)
    {
        var interval = CheckpointInterval.Parse(text);
        Assert.That((interval.Steps, interval.EachEpoch), Is.EqualTo((steps, eachEpoch)));
        Assert.That(interval.IsDue(eachEpoch ? 9 : 24, stepsPerEpoch: 10), Is.True);
        Assert.That(interval.IsDue(eachEpoch ? 10 : 25, stepsPerEpoch: 10), Is.False);
    }

    [TestCase("0")]
    [TestCase("-3")]
    [TestCase("epochs")]
    [TestCase("")]
    public void BadIntervalsAreRefused(string text) =>
        Assert.That(Assert.Throws<InputException>(() => CheckpointInterval.Parse(text))!.Message, Does.StartWith("--checkpoint-every must be N (steps) or epoch"));

    private static int[] Bits(float[] values) => [.. values.Select(BitConverter.SingleToInt32Bits)];
}
