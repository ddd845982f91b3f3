using MpiPipeline.Data;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Data;

[TestFixture]
public sealed class SyntheticImagesTests
{
    [Test]
    public void TheNameGivesShapeAndClassesAndTheDataIsTheSameEveryTime()
    {
        var a = DataSetRegistry.Load("synthetic:2x5x6:3", null, train: true);
        var b = DataSetRegistry.Load("Synthetic:2x5x6:3", null, train: true);
        Assert.That(a.Geometry, Is.EqualTo(new SampleGeometry([2, 5, 6], 3)));
        Assert.That(a.Count, Is.EqualTo(SyntheticImages.TrainCount));
        Assert.That(a.Images, Is.EqualTo(b.Images));
        Assert.That(a.Labels, Is.EqualTo(b.Labels));
        Assert.That(a.Labels.Distinct().Order(), Is.EqualTo(new[] { 0, 1, 2 }));

        var test = DataSetRegistry.Load("synthetic:2x5x6:3", null, train: false);
        Assert.That(test.Count, Is.EqualTo(SyntheticImages.TestCount));
        Assert.That(test.Images.AsSpan(0, 60).ToArray(), Is.Not.EqualTo(a.Images.AsSpan(0, 60).ToArray()), "test samples are others");
        Assert.That(DataSetRegistry.Load("synthetic", null, train: false).Geometry, Is.EqualTo(new SampleGeometry([3, 32, 32], 10)));
    }

    [Test]
    public void SamplesAreTheirClassPrototypeTimesTheSignalPlusUnitNoise()
    {
        // Class means estimated from the samples: the prototypes have unit variance, so two class means differ by
        // about 2 s^2 per value (s = 3 / sqrt(F)) plus the means' own noise 1/n0 + 1/n1, and what is left around a
        // class mean is the unit noise. F = 1024 keeps the prototypes' own spread (sd sqrt(8 / F) of 2) small.
        const int F = 1024;
        var data = DataSetRegistry.Load($"synthetic:{F}:2", null, train: true);
        var means = new double[2, F];
        var counts = new int[2];
        for (var i = 0; i < data.Count; i++)
        {
            counts[data.Labels[i]]++;
            var sample = data.Sample(i);
            for (var v = 0; v < F; v++)
            {
                means[data.Labels[i], v] += sample[v];
            }
        }

        double between = 0, within = 0;
        for (var v = 0; v < F; v++)
        {
            means[0, v] /= counts[0];
            means[1, v] /= counts[1];
            between += Math.Pow(means[0, v] - means[1, v], 2) / F;
        }

        for (var i = 0; i < data.Count; i++)
        {
            var sample = data.Sample(i);
            for (var v = 0; v < F; v++)
            {
                within += Math.Pow(sample[v] - means[data.Labels[i], v], 2);
            }
        }

        within /= (double)data.Count * F;
        between -= 1.0 / counts[0] + 1.0 / counts[1];
        Assert.That(within, Is.EqualTo(1).Within(0.03), "unit noise");
        var s = SyntheticImages.SignalFor(F);
        Assert.That(s, Is.EqualTo(3f / 32));
        Assert.That(between, Is.EqualTo(2 * s * s).Within(15).Percent, "E (P0 - P1)^2 s^2 = 2 s^2");
        Assert.That(counts[0], Is.EqualTo(data.Count / 2).Within(data.Count / 20), "uniform labels");
    }

    [Test]
    public void ImagePrototypesAreConstantOverFourByFourBlocks()
    {
        // The class mean over many samples shows the prototype: values in one 4x4 block agree far better than
        // values of two blocks.
        var data = DataSetRegistry.Load("synthetic:1x8x8:2", null, train: true);
        var mean = new double[64];
        var n = 0;
        for (var i = 0; i < data.Count; i++)
        {
            if (data.Labels[i] == 0)
            {
                n++;
                var sample = data.Sample(i);
                for (var v = 0; v < 64; v++)
                {
                    mean[v] += sample[v];
                }
            }
        }

        var s = SyntheticImages.SignalFor(64);
        Assert.That(Math.Abs(mean[0] - mean[9]) / n, Is.LessThan(0.1 * s), "(0, 0) and (1, 1): one block");
        Assert.That(Math.Abs(mean[0] / n) + Math.Abs(mean[4] / n) + Math.Abs(mean[32] / n), Is.GreaterThan(0.3 * s), "the blocks carry the signal");
    }

    [TestCase("synthetic:0x4", "a dimension")]
    [TestCase("synthetic:3x32x32:1", "class count")]
    [TestCase("synthetic:1x2x3x4", "one to three dimensions")]
    [TestCase("synthetic:3x128x128", "at most 16384 values")]
    [TestCase("synthetic:3:4:5", "too many")]
    [TestCase("synthetic:axb", "a dimension")]
    public void BadNamesSayWhatIsWrong(string name, string problem)
    {
        var ex = Assert.Throws<InputException>(() => DataSetRegistry.Load(name, null, train: true))!;
        Assert.That(ex.Message, Does.Contain(name).And.Contain(problem).And.Contain("synthetic:CxHxW:K"));
    }

    [Test]
    public void RegistryNamesEveryDataSetAndRejectsOthers()
    {
        Assert.That(DataSetRegistry.Names.Take(2), Is.EqualTo(new[] { "fashion-mnist", "synthetic:CxHxW:K" }));
        Assert.That(DataSetRegistry.Default, Is.EqualTo("fashion-mnist"));
        var ex = Assert.Throws<InputException>(() => DataSetRegistry.Find("imagenet:/data"))!;
        Assert.That(ex.Message, Does.Contain("imagenet").And.Contain("fashion-mnist").And.Contain("cifar10:DIR"));
        Assert.That(() => DataSetRegistry.Load("synthetic", "/tmp", train: true),
            Throws.TypeOf<InputException>().With.Message.Contains("--data /tmp"));
    }
}
