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
        yield return Case("conv2d_groups_no_bias", [new("conv2d", 4, 6, 3, 1, 1, 2, 0)], [4, 5, 5], [6, 5, 5], 6 * 2 * 9);
        yield return Case("conv2d_depthwise", [new("conv2d", 4, 4, 3, 1, 1, 4, 1)], [4, 5, 5], [4, 5, 5], 4 * 9 + 4);
        yield return Case("sigmoid", [new("sigmoid")], [5], [5], 0);
        yield return Case("adaptiveavgpool2d", [new("adaptiveavgpool2d", 1)], [3, 7, 5], [3, 1, 1], 0);
        yield return Case("adaptiveavgpool2d_rect", [new("adaptiveavgpool2d", 2, 3)], [2, 7, 5], [2, 2, 3], 0);
        yield return Case("layernorm_sample", [new("layernorm")], [2, 3, 4], [2, 3, 4], 2 * 24);
        yield return Case("layernorm_last", [new("linear", 6, 8), new("layernorm", 8)], [6], [8], 56 + 16);
        yield return Case("residual_downsampling",
            [LayerSpec.ResidualWithShortcut([new("conv2d", 2, 4, 3, 2, 1, 1, 0), new("batchnorm"), new("relu"), new("conv2d", 4, 4, 3, 1, 1, 1, 0)],
                [new("conv2d", 2, 4, 1, 2, 0, 1, 0), new("batchnorm")])],
            [2, 6, 6], [4, 3, 3], 4 * 2 * 9 + 8 + 4 * 4 * 9 + 4 * 2 + 8);
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
    public void ResidualAddsItsShortcut()
    {
        // residual{linear 2 3 with W = 0, b = 1}{linear 2 3 with W = [[1,0],[0,1],[1,1]], b = 0}: y = 1 + (x1, x2, x1 + x2).
        using var stage = Stage.Create([LayerSpec.ResidualWithShortcut([new("linear", 2, 3)], [new("linear", 2, 3)])], [2]);
        stage.Parameters.Clear();
        stage.Parameters[6..9].Fill(1);
        float[] projection = [1, 0, 0, 1, 1, 1];
        projection.CopyTo(stage.Parameters[9..15]);
        var y = new float[3];
        stage.Infer([2, 5], 1, y);
        Assert.That(y, Is.EqualTo(new[] { 3f, 6f, 8f }));
    }

    [Test]
    public void NewKindsComputeWhatTheySay()
    {
        var x = Uniform(2 * 3 * 4 * 5, 3);
        using (var pool = Stage.Create([new LayerSpec("adaptiveavgpool2d", 1)], [3, 4, 5]))
        {
            var y = new float[2 * 3];
            pool.Infer(x, 2, y);
            var means = Enumerable.Range(0, 6).Select(c => x.Skip(c * 20).Take(20).Average()).ToArray();
            Assert.That(y, Is.EqualTo(means).Within(1e-6), "global average pooling: each channel's mean");
        }

        using (var sigmoid = Stage.Create([new LayerSpec("sigmoid")], [4]))
        {
            var y = new float[4];
            sigmoid.Infer([0, 1, -2, 30], 1, y);
            Assert.That(y, Is.EqualTo(new[] { 0.5f, 1 / (1 + MathF.Exp(-1)), 1 / (1 + MathF.Exp(2)), 1f }).Within(1e-6));
        }

        using (var norm = Stage.Create([new LayerSpec("layernorm")], [3, 4, 5]))
        {
            var y = new float[x.Length];
            norm.Infer(x, 2, y);
            foreach (var sample in y.Chunk(60))
            {
                var mean = sample.Average();
                var variance = sample.Select(v => (v - mean) * (v - mean)).Average();
                Assert.That((mean, variance), Is.EqualTo((0f, 1f)).Using<(float, float)>((a, b) =>
                    Math.Abs(a.Item1 - b.Item1) < 1e-5 && Math.Abs(a.Item2 - b.Item2) < 1e-3), "normalized over the whole sample");
            }
        }

        // Groups 2: output channels 0-1 see input channels 0-1 only; with the second input group zero they are all
        // that changes when the first group changes.
        using var grouped = Stage.Create([new LayerSpec("conv2d", 4, 4, 1, 1, 0, 2, 0)], [4, 1, 1]);
        Assert.That(grouped.ParameterCount, Is.EqualTo(4 * 2), "no bias, 2 input channels per output channel");
        grouped.Parameters.Fill(1);
        var output = new float[4];
        grouped.Infer([1, 2, 10, 20], 1, output);
        Assert.That(output, Is.EqualTo(new[] { 3f, 3f, 30f, 30f }));
    }

    [TestCase("conv2d 4 6 3 1 0 4", new[] { 4, 5, 5 }, "groups 4 must divide both in_channels 4 and out_channels 6")]
    [TestCase("conv2d 4 6 3 1 0 1 2", new[] { 4, 5, 5 }, "bias must be 1 (with) or 0 (without), got 2")]
    [TestCase("layernorm 5", new[] { 2, 4 }, "layernorm 5 does not match the input's last dimension 4")]
    [TestCase("adaptiveavgpool2d 2", new[] { 8 }, "needs an image input")]
    [TestCase("residual {|conv2d 2 4 3 2 1|}", new[] { 2, 6, 6 }, "a block that changes it needs a shortcut")]
    [TestCase("residual {|conv2d 2 4 3 2 1|} shortcut {|conv2d 2 4 1|}", new[] { 2, 6, 6 }, "the residual body gives [4, 3, 3] but the shortcut [4, 6, 6]")]
    public void NewKindsRefuseWhatDoesNotFit(string file, int[] input, string message)
    {
        var layers = ModelFile.Parse(file.Replace('|', '\n'), "test");
        var ex = Assert.Throws<TorchException>(() => Stage.Create(layers, input))!;
        Assert.That(ex.Message, Does.Contain(message).And.Contain("layer 0"));
    }

    [Test]
    public void SpecTextCarriesResidualBodies()
    {
        LayerSpec[] layers = [new("flatten"), LayerSpec.Residual(new("linear", 4, 4), new("relu")), new("linear", 4, 2)];
        Assert.That(LayerSpec.Format(layers), Is.EqualTo("flatten;residual{linear 4 4;relu};linear 4 2"));
        Assert.That(layers[1].ToString(), Is.EqualTo("residual{linear 4 4;relu}"));
        Assert.That(new LayerSpec("conv2d", 1, 32, 3, 1, 1).ToString(), Is.EqualTo("conv2d 1 32 3 1 1"));
        Assert.That(LayerSpec.ResidualWithShortcut([new("relu")], [new("conv2d", 2, 4, 1)]).ToString(), Is.EqualTo("residual{relu}{conv2d 2 4 1}"));
        Assert.That(LayerSpec.ResidualWithShortcut([new("relu")], [new("tanh")]), Is.Not.EqualTo(LayerSpec.Residual(new LayerSpec("relu"))));
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
