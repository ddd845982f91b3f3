using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

/// <summary>Model files (<c>--model spec:FILE</c>): the layers they describe, and errors that name the line and the layer.</summary>
[TestFixture]
public sealed class ModelFileTests
{
    private const string Example = """
        # a small ResNet for 3x8x8 images, 4 classes
        conv2d 3 8 3 1 1 1 0     # in out kernel stride padding groups bias
        batchnorm
        relu

        residual {
            conv2d 8 8 3 1 1 1 0
            batchnorm
            relu
            residual {           # nested
                conv2d 8 8 1
            }
        }
        residual{
            conv2d 8 16 3 2 1 1 0
            batchnorm
        } shortcut {
            conv2d 8 16 1 2 0 1 0
            batchnorm 16
        }
        sigmoid
        adaptiveavgpool2d 1
        flatten
        layernorm 16
        dropout 10
        linear 16 4
        """;

    [Test]
    public void ParsesEveryFormIntoTheLayerList()
    {
        var layers = ModelFile.Parse(Example, "example");

        LayerSpec[] expected =
        [
            new("conv2d", 3, 8, 3, 1, 1, 1, 0), new("batchnorm"), new("relu"),
            LayerSpec.Residual(new("conv2d", 8, 8, 3, 1, 1, 1, 0), new("batchnorm"), new("relu"), LayerSpec.Residual(new LayerSpec("conv2d", 8, 8, 1))),
            LayerSpec.ResidualWithShortcut([new("conv2d", 8, 16, 3, 2, 1, 1, 0), new("batchnorm")], [new("conv2d", 8, 16, 1, 2, 0, 1, 0), new("batchnorm", 16)]),
            new("sigmoid"), new("adaptiveavgpool2d", 1), new("flatten"), new("layernorm", 16), new("dropout", 10), new("linear", 16, 4),
        ];
        Assert.That(layers, Is.EqualTo(expected));
    }

    /// <summary>Through --model spec:FILE as the trainer reads it; the bridge builds it with the parameters counted by
    /// hand.</summary>
    [Test]
    public void ASpecModelBuildsThroughTheZoo()
    {
        var path = Path.Combine(TestContext.CurrentContext.WorkDirectory, $"model-{Guid.NewGuid():N}.txt");
        File.WriteAllText(path, Example);
        try
        {
            var layers = ModelZoo.Build(ModelZoo.SpecPrefix + path, new SampleGeometry([3, 8, 8], 4));
            using var stage = Stage.Create(layers, [3, 8, 8]);
            Assert.That(stage.SampleOutputShape, Is.EqualTo(new[] { 4 }));
            long expected = 3 * 8 * 9 + 16 + (8 * 8 * 9 + 16 + 72) + (8 * 16 * 9 + 32 + 8 * 16 + 32) + 32 + 16 * 4 + 4;
            Assert.That(stage.ParameterCount, Is.EqualTo(expected));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestCase("relu\nconv3d 1 2 3\n", 2, "layer 1: unknown layer kind 'conv3d'")]
    [TestCase("relu\nresidual {\n  relu\n  linear 4\n}\n", 4, "layer 1.1 (linear): takes 2 arguments (in_features out_features), got 1")]
    [TestCase("conv2d 1 2 3 1 0 1 0 9\n", 1, "layer 0 (conv2d): takes 3 to 7 arguments")]
    [TestCase("linear 4 x\n", 1, "layer 0 (linear): argument 'x' is not an integer")]
    [TestCase("relu\n}\n", 2, "a '}' without a 'residual {' before it")]
    [TestCase("residual {\n relu\n", 1, "layer 0: the block is never closed")]
    [TestCase("residual {\n}\n", 2, "layer 0: the residual's body is empty")]
    [TestCase("residual {\n relu\n} shortcut {\n}\n", 4, "layer 0: the residual's shortcut is empty")]
    [TestCase("residual\n", 1, "layer 0: a residual block opens its body on its line")]
    [TestCase("relu {\n", 1, "layer 0 (relu): only residual takes a body")]
    [TestCase("residual {\n relu\n} tanh\n", 3, "only 'shortcut {' may follow")]
    [TestCase("relu\nresidual {\n relu\n} shortcut {\n residual {\n  foo\n }\n}\n", 6, "layer 1.shortcut.0.0: unknown layer kind 'foo'")]
    public void ErrorsNameTheLineAndTheLayer(string text, int line, string message)
    {
        var ex = Assert.Throws<InputException>(() => ModelFile.Parse(text, "m.txt"))!;
        Assert.That(ex.Message, Does.StartWith($"model file m.txt, line {line} (").And.Contain(message));
    }

    [Test]
    public void EmptyAndMissingFilesAreClearErrors()
    {
        Assert.That(() => ModelFile.Parse("# nothing\n\n", "empty.txt"),
            Throws.TypeOf<InputException>().With.Message.EqualTo("model file empty.txt: no layers (one layer per line, '#' starts a comment)"));
        Assert.That(() => ModelZoo.CheckName("spec:/nonexistent/model.txt"),
            Throws.TypeOf<InputException>().With.Message.EqualTo("model file /nonexistent/model.txt: no such file"));
        Assert.That(() => ModelZoo.CheckName("spec:"), Throws.TypeOf<InputException>().With.Message.Contains("needs a file name"));
    }
}
