using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Torch;

/// <summary>Every layer kind builds, runs forward and backward, and has the output shape it should.</summary>
[TestFixture]
public sealed class LayerTests
{
    private static IEnumerable<TestCaseData> Kinds()
    {
        TestCaseData Case(string name, LayerSpec[] layers, int[] input, int[] output, long parameters) =>
            new TestCaseData(layers, input, output, parameters).SetName($"Layer_{name}");

        yield return Case("linear", [new("linear", 6, 4)], [6], [4], 28);
        yield return Case("conv2d", [new("conv2d", 2, 3, 3)], [2, 6, 5], [3, 4, 3], 3 * 2 * 9 + 3);
        yield return Case("conv2d_stride_padding", [new("conv2d", 2, 3, 3, 2, 1)], [2, 6, 5], [3, 3, 3], 57);
        yield return Case("relu", [new("relu")], [2, 3], [2, 3], 0);
        yield return Case("tanh", [new("tanh")], [5], [5], 0);
        yield return Case("gelu", [new("gelu")], [5], [5], 0);
        yield return Case("maxpool2d", [new("maxpool2d", 2)], [2, 6, 5], [2, 3, 2], 0);
        yield return Case("maxpool2d_stride_padding", [new("maxpool2d", 3, 1, 1)], [2, 6, 5], [2, 6, 5], 0);
        yield return Case("avgpool2d", [new("avgpool2d", 2)], [2, 6, 5], [2, 3, 2], 0);
        yield return Case("avgpool2d_stride", [new("avgpool2d", 3, 2)], [1, 7, 7], [1, 3, 3], 0);
        yield return Case("flatten", [new("flatten")], [2, 3, 4], [24], 0);
        yield return Case("dropout", [new("dropout", 20)], [7], [7], 0);
        yield return Case("dropout_default", [new("dropout")], [7], [7], 0);
        yield return Case("batchnorm1d", [new("batchnorm", 5)], [5], [5], 10);
        yield return Case("batchnorm2d", [new("batchnorm")], [3, 4, 4], [3, 4, 4], 6);
        yield return Case("residual_mlp", [LayerSpec.Residual(new("linear", 8, 8), new("relu"), new("linear", 8, 8))], [8], [8], 144);
        yield return Case("residual_conv",
            [LayerSpec.Residual(new("conv2d", 4, 4, 3, 1, 1), new("batchnorm", 4), new("relu"), new("conv2d", 4, 4, 3, 1, 1)), new("relu")],
            [4, 5, 5], [4, 5, 5], 2 * (4 * 4 * 9 + 4) + 8);
        yield return Case("residual_nested",
            [LayerSpec.Residual(new("linear", 6, 6), LayerSpec.Residual(new("tanh"), new("linear", 6, 6)))], [6], [6], 84);
        yield return Case("small_cnn",
            [new("conv2d", 1, 4, 3, 1, 1), new("gelu"), new("avgpool2d", 2), new("batchnorm"), new("flatten"),
             new("dropout", 10), new("linear", 4 * 14 * 14, 10), new("tanh")],
            [1, 28, 28], [10], 4 * 9 + 4 + 8 + 784 * 10 + 10);
    }

    [TestCaseSource(nameof(Kinds))]
    public void BuildsRunsAndHasTheRightShape(LayerSpec[] layers, int[] input, int[] output, long parameters)
    {
        using var stage = Stage.Create(layers, input, seed: 1);
        Assert.That(stage.SampleOutputShape, Is.EqualTo(output));
        Assert.That(stage.SampleOutputSize, Is.EqualTo(output.Aggregate(1, (a, b) => a * b)));
        Assert.That(stage.ParameterCount, Is.EqualTo(parameters));

        const int batch = 3;
        var x = Uniform(batch * stage.SampleInputSize, 7);
        var y = new float[batch * stage.SampleOutputSize];
        var gx = new float[x.Length];
        stage.Forward(0, x, batch, y, requireInputGradient: true);
        Assert.That(y.All(float.IsFinite), Is.True);
        stage.Backward(0, Uniform(y.Length, 8), gx);
        Assert.That(gx.All(float.IsFinite), Is.True);
        Assert.That(gx.Any(v => v != 0), Is.True, "an input gradient reaches the input");
        if (parameters > 0)
        {
            Assert.That(stage.Gradients.ToArray().Any(v => v != 0), Is.True, "the parameters get gradients");
        }

        Assert.That(stage.LiveSlots, Is.Zero);
    }

    [Test]
    public void ResidualAddsItsInput()
    {
        // residual{linear} with W = 0, b = 1: y = x + 1.
        using var stage = Stage.Create([LayerSpec.Residual(new LayerSpec("linear", 3, 3))], [3]);
        stage.Parameters.Clear();
        stage.Parameters[^3..].Fill(1);
        var y = new float[3];
        stage.Infer([1, 2, 3], 1, y);
        Assert.That(y, Is.EqualTo(new[] { 2f, 3f, 4f }));
    }

    [Test]
    public void SpecTextCarriesResidualBodies()
    {
        LayerSpec[] layers = [new("flatten"), LayerSpec.Residual(new("linear", 4, 4), new("relu")), new("linear", 4, 2)];
        Assert.That(LayerSpec.Format(layers), Is.EqualTo("flatten;residual{linear 4 4;relu};linear 4 2"));
        Assert.That(layers[1].ToString(), Is.EqualTo("residual{linear 4 4;relu}"));
        Assert.That(new LayerSpec("conv2d", 1, 32, 3, 1, 1).ToString(), Is.EqualTo("conv2d 1 32 3 1 1"));
    }

    [Test]
    public void SpecsCompareByContent()
    {
        Assert.That(new LayerSpec("conv2d", 1, 16, 3), Is.EqualTo(new LayerSpec("conv2d", 1, 16, 3)));
        Assert.That(new LayerSpec("conv2d", 1, 16, 3), Is.Not.EqualTo(new LayerSpec("conv2d", 1, 16, 5)));
        Assert.That(LayerSpec.Residual(new("relu"), new("tanh")), Is.EqualTo(LayerSpec.Residual(new("relu"), new("tanh"))));
        Assert.That(LayerSpec.Residual(new("relu"), new("tanh")), Is.Not.EqualTo(LayerSpec.Residual(new("tanh"), new("relu"))));
        Assert.That(ModelZoo.Build("cnn", FashionMnistGeometry), Is.EqualTo(ModelZoo.Build("cnn", FashionMnistGeometry)));
        Assert.That(new LayerSpec("linear", 2, 3).GetHashCode(), Is.EqualTo(new LayerSpec("linear", 2, 3).GetHashCode()));
    }

    /// <summary>A conv layer's parameter gradients against central finite differences of f = sum(w * y).</summary>
    [Test]
    public void ConvGradientsMatchFiniteDifferences()
    {
        using var stage = Stage.Create([new("conv2d", 2, 2, 3, 1, 1), new("tanh"), new("avgpool2d", 2)], [2, 4, 4], seed: 4);
        const int batch = 2;
        var x = Uniform(batch * stage.SampleInputSize, 1);
        var weights = Uniform(batch * stage.SampleOutputSize, 2);
        var y = new float[weights.Length];
        stage.Forward(0, x, batch, y);
        stage.Backward(0, weights, []);
        var analytic = stage.Gradients.ToArray();

        double F()
        {
            var output = new float[weights.Length];
            stage.Infer(x, batch, output);
            return output.Select((v, i) => (double)v * weights[i]).Sum();
        }

        const float h = 1e-2f;
        for (var i = 0; i < analytic.Length; i++)
        {
            var saved = stage.Parameters[i];
            stage.Parameters[i] = saved + h;
            var plus = F();
            stage.Parameters[i] = saved - h;
            var minus = F();
            stage.Parameters[i] = saved;
            var numeric = (plus - minus) / (2 * h);
            Assert.That(analytic[i], Is.EqualTo(numeric).Within(2e-3 * Math.Max(1, Math.Abs(numeric))), $"parameter {i}");
        }
    }

    [Test]
    public void FirstStageInputGradientMatchesFiniteDifferences()
    {
        using var stage = Stage.Create([new("flatten"), new("linear", 6, 5), new("gelu"), new("linear", 5, 3)], [2, 3], seed: 8);
        var x = Uniform(6, 3);
        int[] label = [2];
        var gx = new float[6];
        stage.ForwardLossBackward(x, 1, label, 1f, gx);
        const float h = 1e-2f;
        for (var i = 0; i < x.Length; i++)
        {
            var saved = x[i];
            x[i] = saved + h;
            var plus = stage.Evaluate(x, 1, label).Loss;
            x[i] = saved - h;
            var minus = stage.Evaluate(x, 1, label).Loss;
            x[i] = saved;
            Assert.That(gx[i], Is.EqualTo((plus - minus) / (2 * h)).Within(2e-3), $"input {i}");
        }
    }
}
