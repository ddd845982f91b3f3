using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

[TestFixture]
public sealed class ModelZooTests
{
    [TestCase("linear", 784 * 10 + 10)]
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
        using var stage = Stage.Create(ModelZoo.Build(name, FashionMnistGeometry), FashionMnistShape);
        Assert.That(stage.SampleOutputShape, Is.EqualTo(new[] { FashionMnistGeometry.Classes }));
        Assert.That(stage.ParameterCount, Is.EqualTo(parameters));
    }

    [Test]
    public void DeepMlpHasNLinearLayersWithReluBetween()
    {
        var layers = ModelZoo.Build("deep-mlp:5", FashionMnistGeometry);
        Assert.That(layers.Count(l => l.Kind == "linear"), Is.EqualTo(5));
        Assert.That(layers.Count(l => l.Kind == "relu"), Is.EqualTo(4));
        Assert.That(layers[^1].Kind, Is.EqualTo("linear"), "logits come out of a linear layer");
    }

    [Test]
    public void Names() =>
        Assert.That(ModelZoo.Names, Is.EqualTo(new[] { "linear", "mlp", "cnn", "deep-mlp:N", "res-mlp:N", "torchscript:FILE" }));

    /// <summary>linear is multinomial logistic regression: one affine map F -> K, nothing else that could make it non-convex.</summary>
    [Test]
    public void LinearIsOneAffineLayer()
    {
        var layers = ModelZoo.Build("linear", FashionMnistGeometry);
        Assert.That(layers.Select(l => l.Kind), Is.EqualTo(new[] { "flatten", "linear" }));
    }

    // The first and last layers follow the data: F values per sample in, K classes out; cnn's linear layer takes
    // 32 (H/4) (W/4) with each halving rounded down (5 -> 2 -> 1, 7 -> 3 -> 1).
    [TestCase("cnn", new[] { 3, 32, 32 }, 100, 3 * 16 * 9 + 16 + 32 * 16 * 9 + 32 + 32 * 8 * 8 * 128 + 128 + 128 * 100 + 100)]
    [TestCase("cnn", new[] { 2, 5, 7 }, 3, 2 * 16 * 9 + 16 + 32 * 16 * 9 + 32 + 32 * 128 + 128 + 128 * 3 + 3)]
    [TestCase("cnn", new[] { 1, 4, 4 }, 2, 16 * 9 + 16 + 32 * 16 * 9 + 32 + 32 * 128 + 128 + 128 * 2 + 2)]
    [TestCase("mlp", new[] { 100 }, 5, 100 * 256 + 256 + 256 * 5 + 5)]
    [TestCase("mlp", new[] { 3, 8, 8 }, 7, 192 * 256 + 256 + 256 * 7 + 7)]
    [TestCase("deep-mlp:2:32", new[] { 12 }, 4, 12 * 32 + 32 + 32 * 4 + 4)]
    [TestCase("res-mlp:3:8", new[] { 2, 3 }, 6, 6 * 8 + 8 + 8 * 8 + 8 + 8 * 6 + 6)]
    public void ModelsAreSizedByTheDataGeometry(string name, int[] shape, int classes, long parameters)
    {
        using var stage = Stage.Create(ModelZoo.Build(name, new SampleGeometry(shape, classes)), shape);
        Assert.That(stage.SampleOutputShape, Is.EqualTo(new[] { classes }));
        Assert.That(stage.ParameterCount, Is.EqualTo(parameters));
    }

    [TestCase(new[] { 784 })]
    [TestCase(new[] { 1, 3, 28 })]
    [TestCase(new[] { 1, 28, 2 })]
    [TestCase(new[] { 1, 1, 28, 28 })]
    public void CnnRejectsSamplesThatAreNotImagesOfAtLeastFourByFour(int[] shape)
    {
        var ex = Assert.Throws<InputException>(() => ModelZoo.Build("cnn", new SampleGeometry(shape, 10)))!;
        Assert.That(ex.Message, Does.Contain("'cnn'").And.Contain(SampleGeometry.Format(shape)).And.Contain("at least 4"));
    }

    [Test]
    public void CheckNameNeedsNoGeometry()
    {
        Assert.DoesNotThrow(() => ModelZoo.CheckName("res-mlp:4:8"));
        Assert.That(() => ModelZoo.CheckName("resnet50"), Throws.TypeOf<InputException>().With.Message.Contains("known models"));
    }
}
