using MpiPipeline.Pipeline;
using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Pipeline;

/// <summary>
/// Stages cut from a ModelZoo list start where the whole model starts: their shapes chain, their flat parameters
/// tile the whole model's, and the chain of stages computes the whole model's output.
/// </summary>
[TestFixture]
internal sealed class StageBuilderTests
{
    private static readonly int[] SampleShape = FashionMnistShape;

    [Test]
    public void ProfileChainsTheShapesOfTheCnn()
    {
        var layers = ModelZoo.Build("cnn", FashionMnistGeometry);
        var profiles = StageBuilder.Profile(layers, SampleShape);
        Assert.That(profiles, Has.Count.EqualTo(layers.Count));
        Assert.That(profiles[0].InputShape, Is.EqualTo(SampleShape));
        for (var l = 1; l < profiles.Count; l++)
        {
            Assert.That(profiles[l].InputShape, Is.EqualTo(profiles[l - 1].OutputShape), $"layer {l}");
        }

        Assert.That(profiles[2].OutputShape, Is.EqualTo(new[] { 16, 14, 14 }), "after the first maxpool");
        Assert.That(profiles[^1].OutputShape, Is.EqualTo(new[] { 10 }));
        Assert.That(profiles.Select(p => p.Parameters), Is.EqualTo(new long[] { 160, 0, 0, 4640, 0, 0, 0, 200_832, 0, 1290 }));
        Assert.That(profiles.All(p => double.IsNaN(p.Seconds)), "not measured unless asked");
    }

    [Test]
    public void MeasuredLayerTimesArePositive()
    {
        var profiles = StageBuilder.Profile(ModelZoo.Build("mlp", FashionMnistGeometry), SampleShape, timingMicroBatch: 4);
        Assert.That(profiles.Select(p => p.Seconds), Has.All.GreaterThan(0).And.All.LessThan(1));
    }

    [TestCase("cnn", new[] { 3, 4, 3 })]
    [TestCase("mlp", new[] { 1, 1, 1, 1 })]
    [TestCase("deep-mlp:3:16", new[] { 2, 4 })]
    public void SlicesTileTheWholeModelAndComputeItsOutput(string model, int[] balance)
    {
        var layers = ModelZoo.Build(model, FashionMnistGeometry);
        var profiles = StageBuilder.Profile(layers, SampleShape);
        var ranges = Partition.ByBalance(layers.Count, balance);
        using var whole = Stage.Create(layers, SampleShape, seed: 7);
        var stages = ranges.Select(r => StageBuilder.Create(layers, profiles, SampleShape, r, "cpu", seed: 7)).ToList();
        try
        {
            var tiled = stages.SelectMany(s => s.Parameters.ToArray()).ToArray();
            Assert.That(tiled, Is.EqualTo(whole.Parameters.ToArray()), "the stages' flat buffers in order are the whole model's");

            const int batch = 3;
            var x = Uniform(batch * 784, 11);
            var expected = new float[batch * 10];
            whole.Infer(x, batch, expected);
            foreach (var stage in stages)
            {
                var y = new float[batch * stage.SampleOutputSize];
                stage.Infer(x, batch, y);
                x = y;
            }

            AssertClose(x, expected, 1e-6, "output of the chained stages");
        }
        finally
        {
            stages.ForEach(s => s.Dispose());
        }
    }
}
