using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Torch;

/// <summary>A stage's buffers (BatchNorm's running statistics): read, written, and what evaluation uses.</summary>
[TestFixture]
public sealed class BufferTests
{
    [Test]
    public void BatchNormRunningStatisticsAreTheBuffers()
    {
        using var stage = Stage.Create([new("conv2d", 1, 2, 1, 1, 0, 1, 0), new("batchnorm"), new("flatten"), new("linear", 8, 3), new("batchnorm")], [1, 2, 2]);
        Assert.That(stage.BufferLength, Is.EqualTo(2 * 2 + 2 * 3), "running mean and variance per channel and per feature");
        Assert.That(stage.GetBuffers(), Is.EqualTo(new float[] { 0, 0, 1, 1, 0, 0, 0, 1, 1, 1 }), "libtorch's initial statistics");

        var x = Uniform(4 * 4, 5, 3f);
        var y = new float[4 * 3];
        stage.Forward(0, x, 4, y);
        stage.Backward(0, new float[y.Length], []);
        Assert.That(stage.GetBuffers(), Is.Not.EqualTo(new float[] { 0, 0, 1, 1, 0, 0, 0, 1, 1, 1 }), "a training forward updates them");

        float[] values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        stage.SetBuffers(values);
        Assert.That(stage.GetBuffers(), Is.EqualTo(values));
        Assert.That(() => stage.SetBuffers(new float[3]), Throws.TypeOf<TorchException>().With.Message.Contains("10 buffer values"));
    }

    /// <summary>Evaluation normalizes with the buffers: (x - mean) / sqrt(var + 1e-5) with the initial scale 1 and shift 0.</summary>
    [Test]
    public void EvaluationUsesTheBuffers()
    {
        using var stage = Stage.Create([new("batchnorm", 2)], [2]);
        Assert.That(stage.ParameterCount, Is.EqualTo(4));
        stage.SetBuffers([1, -2, 4, 0.25f]);
        var y = new float[2];
        stage.Infer([3, 3], 1, y);
        Assert.That(y, Is.EqualTo(new[] { 2 / MathF.Sqrt(4 + 1e-5f), 5 / MathF.Sqrt(0.25f + 1e-5f) }).Within(1e-5));
    }

    [Test]
    public void ModelsWithoutBatchNormHaveNoBuffers()
    {
        using var stage = Stage.Create(ModelZoo.Build("cnn", FashionMnistGeometry), FashionMnistShape);
        Assert.That(stage.BufferLength, Is.Zero);
        Assert.That(stage.GetBuffers(), Is.Empty);
    }
}
