using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

[TestFixture]
public sealed class ModelZooTests
{
    [TestCase("mlp", 203_530)]
    [TestCase("cnn", 16 * 9 + 16 + 32 * 16 * 9 + 32 + 1568 * 128 + 128 + 128 * 10 + 10)]
    [TestCase("deep-mlp:1", 7850)]
    [TestCase("deep-mlp:3", 784 * 256 + 256 + 256 * 256 + 256 + 2570)]
    [TestCase("deep-mlp:2:32", 784 * 32 + 32 + 330)]
    [TestCase("res-mlp:2", 784 * 16 + 16 + 170)]
    [TestCase("res-mlp:4:8", 784 * 8 + 8 + 2 * (8 * 8 + 8) + 90)]
    [TestCase(" CNN ", 16 * 9 + 16 + 32 * 16 * 9 + 32 + 1568 * 128 + 128 + 128 * 10 + 10)]
    public void EveryModelBuildsForFashionMnist(string name, long parameters)
    {
        using var stage = Stage.Create(ModelZoo.Build(name), ModelZoo.FashionMnistSampleShape);
        Assert.That(stage.SampleOutputShape, Is.EqualTo(new[] { ModelZoo.FashionMnistClasses }));
        Assert.That(stage.ParameterCount, Is.EqualTo(parameters));
    }

    [Test]
    public void DeepMlpHasNLinearLayersWithReluBetween()
    {
        var layers = ModelZoo.Build("deep-mlp:5");
        Assert.That(layers.Count(l => l.Kind == "linear"), Is.EqualTo(5));
        Assert.That(layers.Count(l => l.Kind == "relu"), Is.EqualTo(4));
        Assert.That(layers[^1].Kind, Is.EqualTo("linear"), "logits come out of a linear layer");
    }

    [Test]
    public void NamesAndShape()
    {
        Assert.That(ModelZoo.Names, Is.EqualTo(new[] { "mlp", "cnn", "deep-mlp:N", "res-mlp:N" }));
        Assert.That(ModelZoo.FashionMnistSampleShape, Is.EqualTo(new[] { 1, 28, 28 }));
    }
}
