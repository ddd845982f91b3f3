using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Torch;

/// <summary>The flat buffers, forward/loss/gradients against hand computations, seeds, modes.</summary>
[TestFixture]
public sealed class StageTests
{
    [Test]
    public void ParametersSpanIsTheModel()
    {
        using var stage = Stage.Create([new("linear", 3, 2)], [3]);
        Assert.That(stage.ParameterCount, Is.EqualTo(8), "weight 2x3 + bias 2");
        Assert.That(stage.SampleInputShape, Is.EqualTo(new[] { 3 }));
        Assert.That(stage.SampleOutputShape, Is.EqualTo(new[] { 2 }));
        Assert.That(stage.Device, Is.EqualTo("cpu"));
        Assert.That(stage.IsCuda, Is.False);

        // Layout: the weight row-major, then the bias (libtorch's registration order).
        float[] values = [1, 2, 3, 4, 5, 6, 0.5f, -1];
        values.CopyTo(stage.Parameters);
        var output = new float[2];
        stage.Infer([1, -1, 2], 1, output);
        Assert.That(output, Is.EqualTo(new[] { 1 - 2 + 6 + 0.5f, 4 - 5 + 12 - 1f }), "W x + b by hand");

        stage.Parameters[6] = 10; // the first bias
        stage.Forward(0, [1, -1, 2], 1, output);
        Assert.That(output[0], Is.EqualTo(1 - 2 + 6 + 10f), "a write into the span reaches the next forward");
        stage.Backward(0, [1, 0], []);
        Assert.That(stage.Gradients.ToArray(), Is.EqualTo(new float[] { 1, -1, 2, 0, 0, 0, 1, 0 }),
            "dL/dW = g x^T, dL/db = g, written into the gradient span");
    }

    [Test]
    public void LinearCrossEntropyGradientsMatchAHandComputation()
    {
        const int inputs = 4, classes = 3, batch = 5;
        using var stage = Stage.Create([new("linear", inputs, classes)], [inputs], seed: 3);
        var w = stage.Parameters[..(inputs * classes)].ToArray();
        var b = stage.Parameters[(inputs * classes)..].ToArray();
        var x = Uniform(batch * inputs, 1, 2f);
        var labels = Labels(batch, classes, 2);
        var inputGradient = new float[batch * inputs];
        var result = stage.ForwardLossBackward(x, batch, labels, 1f, inputGradient);

        // softmax cross-entropy, mean over the batch: dL/dz = (softmax(z) - onehot) / B
        var dw = new double[inputs * classes];
        var db = new double[classes];
        var dx = new double[batch * inputs];
        double loss = 0;
        var correct = 0;
        for (var n = 0; n < batch; n++)
        {
            var z = new double[classes];
            for (var c = 0; c < classes; c++)
            {
                z[c] = b[c];
                for (var i = 0; i < inputs; i++)
                {
                    z[c] += w[c * inputs + i] * x[n * inputs + i];
                }
            }

            var max = z.Max();
            var sum = z.Sum(v => Math.Exp(v - max));
            loss += -(z[labels[n]] - max - Math.Log(sum)) / batch;
            correct += Array.IndexOf(z, max) == labels[n] ? 1 : 0;
            for (var c = 0; c < classes; c++)
            {
                var dz = (Math.Exp(z[c] - max) / sum - (c == labels[n] ? 1 : 0)) / batch;
                db[c] += dz;
                for (var i = 0; i < inputs; i++)
                {
                    dw[c * inputs + i] += dz * x[n * inputs + i];
                    dx[n * inputs + i] += dz * w[c * inputs + i];
                }
            }
        }

        Assert.That(result.Loss, Is.EqualTo(loss).Within(1e-5));
        Assert.That(result.Correct, Is.EqualTo(correct));
        Assert.That(result.Count, Is.EqualTo(batch));
        AssertClose(stage.Gradients[..(inputs * classes)], dw, 1e-5, "dW");
        AssertClose(stage.Gradients[(inputs * classes)..], db, 1e-5, "db");
        AssertClose(inputGradient, dx, 1e-5, "dx");

        var evaluated = stage.Evaluate(x, batch, labels);
        Assert.That(evaluated.Loss, Is.EqualTo(loss).Within(1e-5), "Evaluate: the same mean loss");
        Assert.That(evaluated.Correct, Is.EqualTo(correct));
    }

    [Test]
    public void LossScaleScalesGradientsButNotTheReportedLoss()
    {
        using var stage = Stage.Create(ModelZoo.Build("mlp", FashionMnistGeometry), FashionMnistShape, seed: 1);
        var x = Uniform(3 * 784, 5);
        var labels = Labels(3, 10, 6);
        var one = stage.ForwardLossBackward(x, 3, labels, 1f, []);
        var g1 = stage.Gradients.ToArray();
        stage.ZeroGradients();
        Assert.That(stage.Gradients.ToArray(), Is.All.EqualTo(0f), "ZeroGradients zeroes the span");
        var quarter = stage.ForwardLossBackward(x, 3, labels, 0.25f, []);
        Assert.That(quarter.Loss, Is.EqualTo(one.Loss));
        AssertClose(stage.Gradients, g1.Select(g => g * 0.25f).ToArray(), 1e-6, "gradients at loss scale 1/4");
    }

    [Test]
    public void GradientsAccumulateOverCalls()
    {
        using var stage = Stage.Create(ModelZoo.Build("mlp", FashionMnistGeometry), FashionMnistShape, seed: 1);
        var x1 = Uniform(4 * 784, 11);
        var x2 = Uniform(3 * 784, 12);
        var l1 = Labels(4, 10, 13);
        var l2 = Labels(3, 10, 14);
        stage.ForwardLossBackward(x1, 4, l1, 1f, []);
        var g1 = stage.Gradients.ToArray();
        stage.ZeroGradients();
        stage.ForwardLossBackward(x2, 3, l2, 1f, []);
        var g2 = stage.Gradients.ToArray();
        stage.ZeroGradients();
        stage.ForwardLossBackward(x1, 4, l1, 1f, []);
        stage.ForwardLossBackward(x2, 3, l2, 1f, []);
        AssertClose(stage.Gradients, g1.Zip(g2, (a, b) => a + b).ToArray(), 1e-6, "accumulated gradients");
    }

    [Test]
    public void SameSeedSameParametersDifferentSeedDifferent()
    {
        var layers = ModelZoo.Build("cnn", FashionMnistGeometry);
        using var a = Stage.Create(layers, FashionMnistShape, seed: 42);
        using var b = Stage.Create(layers, FashionMnistShape, seed: 42);
        using var c = Stage.Create(layers, FashionMnistShape, seed: 43);
        Assert.That(a.Parameters.SequenceEqual(b.Parameters), Is.True, "seed 42 twice");
        Assert.That(a.Parameters.SequenceEqual(c.Parameters), Is.False, "seeds 42 and 43");
        Assert.That(a.Parameters.ToArray().Distinct().Count(), Is.GreaterThan(1000), "initialized, not constant");
    }

    [Test]
    public void SameSeedsGiveIdenticalParametersAfterSteps()
    {
        float[] Train()
        {
            TorchRuntime.ManualSeed(7);
            using var stage = Stage.Create(
                [new("flatten"), new("linear", 784, 64), new("relu"), new("dropout", 30), new("linear", 64, 10)],
                FashionMnistShape, seed: 5);
            using var sgd = Optimizer.Sgd(stage, 0.1, momentum: 0.9);
            for (var step = 0; step < 4; step++)
            {
                stage.ZeroGradients();
                stage.ForwardLossBackward(Uniform(8 * 784, step), 8, Labels(8, 10, step), 1f, []);
                sgd.Step();
            }

            return stage.Parameters.ToArray();
        }

        Assert.That(Train(), Is.EqualTo(Train()), "same stage seed and dropout seed: bit-identical after 4 steps");
    }

    [Test]
    public void CreatingAStageLeavesTheGlobalRandomStreamAlone()
    {
        using var dropout = Stage.Create([new("dropout", 50)], [64]);
        var ones = Enumerable.Repeat(1f, 64).ToArray();
        float[] Mask()
        {
            var output = new float[64];
            dropout.Forward(0, ones, 1, output);
            dropout.Backward(0, new float[64], []);
            return output;
        }

        TorchRuntime.ManualSeed(11);
        var first = Mask();
        TorchRuntime.ManualSeed(11);
        using (Stage.Create(ModelZoo.Build("mlp", FashionMnistGeometry), FashionMnistShape, seed: 3))
        {
        }

        Assert.That(Mask(), Is.EqualTo(first));
    }

    [Test]
    public void DropoutFollowsTrainingAndEvaluationIgnoresIt()
    {
        using var stage = Stage.Create([new("dropout", 50)], [1000]);
        var ones = Enumerable.Repeat(1f, 1000).ToArray();
        var output = new float[1000];
        stage.Forward(0, ones, 1, output);
        stage.Backward(0, new float[1000], []);
        Assert.That(output.Count(v => v == 0), Is.InRange(400, 600), "about half dropped");
        Assert.That(output.Where(v => v != 0), Is.All.EqualTo(2f), "survivors scaled by 1/(1-p)");

        stage.Infer(ones, 1, output);
        Assert.That(output, Is.All.EqualTo(1f), "Infer runs in eval mode");
        Assert.That(stage.Training, Is.True, "and leaves the mode as it was");

        stage.Training = false;
        stage.Forward(0, ones, 1, output);
        stage.Backward(0, new float[1000], []);
        Assert.That(output, Is.All.EqualTo(1f), "Training = false: dropout off in Forward too");
    }

    [Test]
    public void BatchnormNormalizesEachMicroBatchInTrainingAndUsesRunningStatisticsInEval()
    {
        using var stage = Stage.Create([new("batchnorm", 3)], [3]);
        var x = Uniform(4 * 3, 21, 5f).Select((v, i) => v + i % 3 * 10).ToArray();
        var y = new float[12];
        stage.Forward(0, x, 4, y);
        stage.Backward(0, new float[12], []);
        for (var f = 0; f < 3; f++)
        {
            var mean = Enumerable.Range(0, 4).Average(n => y[n * 3 + f]);
            Assert.That(mean, Is.EqualTo(0).Within(1e-5), $"feature {f}: zero mean over this micro-batch");
        }

        var before = new float[12];
        stage.Infer(x, 4, before);
        Assert.That(before, Is.Not.EqualTo(y), "eval mode uses the running statistics, not the batch's");
        Assert.That(stage.Parameters.Length, Is.EqualTo(6), "gamma and beta only; running statistics are buffers");
    }

    [Test]
    public void EvaluateAndInferKeepNoGraphAndTouchNoGradients()
    {
        using var stage = Stage.Create(ModelZoo.Build("mlp", FashionMnistGeometry), FashionMnistShape, seed: 2);
        var x = Uniform(2 * 784, 1);
        var output = new float[20];
        stage.Infer(x, 2, output);
        stage.Evaluate(x, 2, [1, 2]);
        Assert.That(stage.LiveSlots, Is.Zero);
        Assert.That(stage.Gradients.ToArray(), Is.All.EqualTo(0f));

        var forwarded = new float[20];
        stage.Forward(5, x, 2, forwarded);
        Assert.That(stage.LiveSlots, Is.EqualTo(1));
        Assert.That(forwarded, Is.EqualTo(output), "Forward and Infer agree");
        stage.Backward(5, new float[20], []);
        Assert.That(stage.LiveSlots, Is.Zero, "Backward frees the slot");
    }

    [Test]
    public void SummaryListsLayersAndParameters()
    {
        using var stage = Stage.Create(ModelZoo.Build("mlp", FashionMnistGeometry), FashionMnistShape);
        Assert.That(stage.Summary, Does.Contain("linear 784 256").And.Contain("[256]").And.Contain("parameters 203530"));
    }
}
