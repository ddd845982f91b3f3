using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

[TestFixture]
public sealed class ModelZooTests
{
    [TestCase("linear", 784 * 10 + 10)]
    [TestCase("mlp", 203_530)]
    [TestCase("cnn", 16 * 9 + 16 + 32 * 16 * 9 + 32 + 1568 * 128 + 128 + 128 * 10 + 10)]
    [TestCase("cnn-wide", 16 * 9 + 16 + 32 * 16 * 9 + 32 + 1568 * 4096 + 4096 + 4096 * 10 + 10)]
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
        Assert.That(ModelZoo.Names, Is.EqualTo(new[] { "linear", "mlp", "cnn", "cnn-wide", "deep-mlp:N", "res-mlp:N", "resnet20", "vgg11-small", "spec:FILE", "torchscript:FILE" }));

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
    [TestCase("cnn-wide", new[] { 3, 32, 32 }, 100, 3 * 16 * 9 + 16 + 32 * 16 * 9 + 32 + 32 * 8 * 8 * 4096 + 4096 + 4096 * 100 + 100)]
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
        var ex = Assert.Throws<SampleShapeException>(() => ModelZoo.Build("cnn", new SampleGeometry(shape, 10)))!;
        Assert.That(ex.Message, Does.Contain("'cnn'").And.Contain(SampleGeometry.Format(shape)).And.Contain("at least 4"));
    }

    // resnet20 counted by hand: stem conv 3-16 (432) + BN (32); stage 1: 6 convs 16-16 (6 x 2304) + 6 BN (6 x 32);
    // stage 2: conv 16-32 (4608) + 5 convs 32-32 (5 x 9216) + 6 BN (6 x 64) + shortcut conv 1x1 16-32 (512) + BN (64);
    // stage 3: conv 32-64 (18432) + 5 convs 64-64 (5 x 36864) + 6 BN (6 x 128) + shortcut 32-64 (2048) + BN (128);
    // linear 64-10 (650): 272,474, the "0.27M" of He et al. 2016's Table 6 (their option A shortcut has no parameters:
    // 272,474 - 2,752 = 269,722, also 0.27M).
    // vgg11-small: convs (no bias) 3-16, 16-32, 32-64, 64-64, 64-128, 3 x 128-128: 432 + 4608 + 18432 + 36864 + 73728
    // + 3 x 147456; 8 BN 2 x (16 + 32 + 64 + 64 + 4 x 128); linear 128-10.
    [TestCase("resnet20", new[] { 3, 32, 32 }, 10, 272_474)]
    [TestCase("resnet20", new[] { 1, 28, 28 }, 10, 272_474 - 2 * 16 * 9)]
    [TestCase("resnet20", new[] { 3, 32, 32 }, 100, 272_474 + 65 * 90)]
    [TestCase("vgg11-small", new[] { 3, 32, 32 }, 10, 432 + 4608 + 18432 + 36864 + 73728 + 3 * 147456 + 2 * 688 + 1290)]
    [TestCase("vgg11-small", new[] { 1, 28, 28 }, 10, 144 + 4608 + 18432 + 36864 + 73728 + 3 * 147456 + 2 * 688 + 1290)]
    public void StandardCifarModels(string name, int[] shape, int classes, long parameters)
    {
        var layers = ModelZoo.Build(name, new SampleGeometry(shape, classes));
        using var stage = Stage.Create(layers, shape);
        Assert.That(stage.SampleOutputShape, Is.EqualTo(new[] { classes }));
        Assert.That(stage.ParameterCount, Is.EqualTo(parameters));
    }

    [Test]
    public void ResNet20IsThreeStagesOfThreeBasicBlocks()
    {
        var layers = ModelZoo.Build("resnet20", new SampleGeometry([3, 32, 32], 10));
        var blocks = layers.Where(l => l.Kind == "residual").ToList();
        Assert.That(blocks, Has.Count.EqualTo(9));
        Assert.That(blocks.Select(b => b.Body[0].Args[1]), Is.EqualTo(new long[] { 16, 16, 16, 32, 32, 32, 64, 64, 64 }), "output channels");
        Assert.That(blocks.Select(b => b.Body[0].Args[3]), Is.EqualTo(new long[] { 1, 1, 1, 2, 1, 1, 2, 1, 1 }), "strides");
        Assert.That(blocks.Select(b => b.Shortcut.Count > 0), Is.EqualTo(new[] { false, false, false, true, false, false, true, false, false }),
            "projection shortcuts where the shape changes only");
        var convolutions = layers.Count(l => l.Kind == "conv2d") + blocks.Sum(b => b.Body.Count(l => l.Kind == "conv2d"));
        Assert.That(convolutions + 1, Is.EqualTo(20), "19 convolutions on the main path and the linear layer: 20 layers");

        // 32 -> 16 -> 8 before the global pooling: the stage's output after the last block is [64, 8, 8].
        using var trunk = Stage.Create(layers.Take(layers.Count - 3).ToList(), [3, 32, 32]);
        Assert.That(trunk.SampleOutputShape, Is.EqualTo(new[] { 64, 8, 8 }));
    }

    [Test]
    public void Vgg11SmallSkipsPoolingsSmallImagesCannotTake()
    {
        var pools = (int[] shape) => ModelZoo.Build("vgg11-small", new SampleGeometry(shape, 10)).Count(l => l.Kind == "maxpool2d");
        Assert.That(pools([3, 32, 32]), Is.EqualTo(5), "32 -> 16 -> 8 -> 4 -> 2 -> 1");
        Assert.That(pools([1, 28, 28]), Is.EqualTo(4), "28 -> 14 -> 7 -> 3 -> 1, the fifth skipped");
        Assert.That(pools([3, 4, 4]), Is.EqualTo(2));
        using var stage = Stage.Create(ModelZoo.Build("vgg11-small", new SampleGeometry([3, 4, 4], 5)), [3, 4, 4]);
        Assert.That(stage.SampleOutputShape, Is.EqualTo(new[] { 5 }));
    }

    [TestCase("resnet20")]
    [TestCase("vgg11-small")]
    public void ImageModelsRefuseFlatSamples(string name)
    {
        var ex = Assert.Throws<InputException>(() => ModelZoo.Build(name, new SampleGeometry([784], 10)))!;
        Assert.That(ex.Message, Does.Contain($"'{name}'").And.Contain("784"));
    }

    [Test]
    public void CheckNameNeedsNoGeometry()
    {
        Assert.DoesNotThrow(() => ModelZoo.CheckName("res-mlp:4:8"));
        Assert.That(() => ModelZoo.CheckName("resnet50"), Throws.TypeOf<InputException>().With.Message.Contains("known models"));
    }
}
