using MpiPipeline.Layerwise;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Layerwise;

/// <summary>The configurations each layer kind takes, and the shapes they are checked against: literal tables.</summary>
[TestFixture]
internal sealed class LayerConfigsTests
{
    private static string Configs(string model, int layer, int batch, int ranks) =>
        string.Join(" ", LayerConfigs.For(LayerNode.Of(model, FashionMnistGeometry)[layer], batch, ranks));

    // cnn on 1x28x28: conv 1-16 (28 rows), relu, pool (14 rows), conv 16-32, relu, pool (7 rows), flatten (1568),
    // linear 1568-128, relu, linear 128-10.
    [TestCase("cnn", 0, 128, 4, "n4c1h1 n2c2h1 n2c1h2 n1c4h1 n1c2h2 n1c1h4")]
    [TestCase("cnn", 5, 128, 4, "n4c1h1 n2c2h1 n1c4h1")] // 7 output rows: no height split of 2 or 4
    [TestCase("cnn", 6, 128, 4, "n4c1h1 n2c2h1 n1c4h1")] // flatten: channel blocks, never rows
    [TestCase("cnn", 9, 128, 4, "n4c1h1 n2c2h1")] // 10 classes: c = 4 does not divide them
    [TestCase("cnn", 9, 6, 4, "n2c2h1")] // a batch of 6: n = 4 does not divide it, n = 1 needs c = 4
    [TestCase("cnn", 0, 128, 2, "n2c1h1 n1c2h1 n1c1h2")]
    [TestCase("cnn", 0, 128, 1, "n1c1h1")]
    [TestCase("cnn-wide", 7, 128, 4, "n4c1h1 n2c2h1 n1c4h1")]
    [TestCase("res-mlp:4:8", 2, 128, 4, "n4c1h1")] // a residual block: sample splits only
    [TestCase("mlp", 0, 128, 4, "n4c1h1")] // flatten of a 1-channel image: its channel block cannot be split
    [TestCase("mlp", 1, 128, 4, "n4c1h1 n2c2h1 n1c4h1")]
    public void EnumeratesTheValidConfigurations(string model, int layer, int batch, int ranks, string expected) =>
        Assert.That(Configs(model, layer, batch, ranks), Is.EqualTo(expected));

    [Test]
    public void EveryConfigurationUsesEveryRankAndDividesWhatItSplits()
    {
        foreach (var model in new[] { "cnn", "cnn-wide", "mlp", "res-mlp:4:8" })
        {
            foreach (var ranks in new[] { 1, 2, 3, 4, 8 })
            {
                foreach (var node in LayerNode.Of(model, FashionMnistGeometry))
                {
                    foreach (var c in LayerConfigs.For(node, 96, ranks))
                    {
                        Assert.That(c.Ranks, Is.EqualTo(ranks));
                        Assert.That(96 % c.Sample, Is.Zero);
                        Assert.That(node.OutputShape[0] % c.Channel, Is.Zero, $"{model} {node.Spec} {c}");
                        Assert.That(c.Height == 1 || node.OutputShape[1] % c.Height == 0, $"{model} {node.Spec} {c}");
                    }
                }
            }
        }
    }

    [Test]
    public void ShapesFollowTheLayers()
    {
        var nodes = LayerNode.Of("cnn", FashionMnistGeometry);
        Assert.That(nodes.Select(n => SampleGeometry.Format(n.OutputShape)), Is.EqualTo(new[]
        {
            "16x28x28", "16x28x28", "16x14x14", "32x14x14", "32x14x14", "32x7x7", "1568", "128", "128", "10",
        }));
        Assert.That(nodes.Sum(n => n.Parameters), Is.EqualTo(16 * 9 + 16 + 32 * 16 * 9 + 32 + 1568 * 128 + 128 + 128 * 10 + 10));
    }

    [Test]
    public void CnnWideIsTheCnnsConvsThenA4096WideLinearLayer()
    {
        var cnn = ModelZoo.Build("cnn", FashionMnistGeometry);
        var wide = ModelZoo.Build("cnn-wide", FashionMnistGeometry);
        Assert.That(wide.Take(7), Is.EqualTo(cnn.Take(7)));
        Assert.That(wide.Skip(7).Select(l => l.ToString()), Is.EqualTo(new[] { "linear 1568 4096", "relu", "linear 4096 10" }));
    }

    [Test]
    public void AnUnknownLayerKindIsOneClearMessage() =>
        Assert.That(() => LayerNode.Of([new LayerSpec("softmax")], [10]),
            Throws.TypeOf<InputException>().With.Message.Contains("softmax").And.Message.Contains("linear, conv2d"));
}
