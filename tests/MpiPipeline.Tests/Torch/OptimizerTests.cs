using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Torch;

/// <summary>SGD and Adam on the flat buffers against torch.optim's formulas computed here, in double, over several steps.</summary>
[TestFixture]
public sealed class OptimizerTests
{
    private const int Steps = 5;

    private static Stage TinyStage(out double[] theta)
    {
        var stage = Stage.Create([new("linear", 4, 3)], [4], seed: 9);
        theta = stage.Parameters.ToArray().Select(v => (double)v).ToArray();
        return stage;
    }

    /// <summary>The gradient of step t, written straight into the flat gradient span (the optimizer reads it from there).</summary>
    private static double[] SetGradient(Stage stage, int step)
    {
        var g = Uniform(stage.Gradients.Length, 50 + step, 0.5f);
        g.CopyTo(stage.Gradients);
        return g.Select(v => (double)v).ToArray();
    }

    [TestCase(0.0, 0.0, false, 0.0, TestName = "Sgd_Plain")]
    [TestCase(0.9, 0.0, false, 0.0, TestName = "Sgd_Momentum")]
    [TestCase(0.9, 0.3, false, 0.0, TestName = "Sgd_MomentumDampening")]
    [TestCase(0.8, 0.0, true, 0.0, TestName = "Sgd_Nesterov")]
    [TestCase(0.9, 0.1, false, 0.01, TestName = "Sgd_MomentumWeightDecay")]
    [TestCase(0.7, 0.0, true, 0.05, TestName = "Sgd_NesterovWeightDecay")]
    public void SgdMatchesTorchOptimSgd(double momentum, double dampening, bool nesterov, double weightDecay)
    {
        using var stage = TinyStage(out var theta);
        var lr = 0.1;
        using var sgd = Optimizer.Sgd(stage, lr, momentum, dampening, nesterov, weightDecay);
        double[]? buffer = null;
        for (var t = 0; t < Steps; t++)
        {
            if (t == 3)
            {
                lr = 0.05;
                sgd.LearningRate = lr;
            }

            var g = SetGradient(stage, t);
            var d = g.Select((gi, i) => gi + weightDecay * theta[i]).ToArray();
            if (momentum != 0)
            {
                buffer = buffer is null ? [.. d] : buffer.Select((b, i) => momentum * b + (1 - dampening) * d[i]).ToArray();
                d = nesterov ? d.Select((di, i) => di + momentum * buffer[i]).ToArray() : [.. buffer];
            }

            theta = theta.Select((p, i) => p - lr * d[i]).ToArray();
            sgd.Step();
            AssertClose(stage.Parameters, theta, 1e-6, $"parameters after step {t + 1}");
        }

        Assert.That(sgd.LearningRate, Is.EqualTo(0.05));
    }

    [TestCase(0.9, 0.999, 1e-8, 0.0, TestName = "Adam_Defaults")]
    [TestCase(0.8, 0.99, 1e-3, 0.1, TestName = "Adam_WeightDecay")]
    public void AdamMatchesTorchOptimAdam(double beta1, double beta2, double eps, double weightDecay)
    {
        using var stage = TinyStage(out var theta);
        var lr = 0.01;
        using var adam = Optimizer.Adam(stage, lr, beta1, beta2, eps, weightDecay);
        var m = new double[theta.Length];
        var v = new double[theta.Length];
        for (var t = 1; t <= Steps; t++)
        {
            if (t == 4)
            {
                lr = 0.003;
                adam.LearningRate = lr;
            }

            var g = SetGradient(stage, t);
            for (var i = 0; i < theta.Length; i++)
            {
                var gi = g[i] + weightDecay * theta[i];
                m[i] = beta1 * m[i] + (1 - beta1) * gi;
                v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
                var denominator = Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(beta2, t)) + eps;
                theta[i] -= lr / (1 - Math.Pow(beta1, t)) * m[i] / denominator;
            }

            adam.Step();
            AssertClose(stage.Parameters, theta, 1e-6, $"parameters after step {t}");
        }
    }

    [Test]
    public void StepDoesNotTouchTheGradients()
    {
        using var stage = TinyStage(out _);
        using var sgd = Optimizer.Sgd(stage, 0.1, momentum: 0.5);
        var g = SetGradient(stage, 0);
        sgd.Step();
        AssertClose(stage.Gradients, g, 0, "gradients after a step");
    }

    [Test]
    public void TrainingReducesTheLoss()
    {
        using var stage = Stage.Create(ModelZoo.Build("mlp", FashionMnistGeometry), FashionMnistShape, seed: 1);
        using var adam = Optimizer.Adam(stage, 1e-3);
        var x = Uniform(16 * 784, 1);
        var labels = Labels(16, 10, 2);
        var before = stage.Evaluate(x, 16, labels).Loss;
        for (var step = 0; step < 20; step++)
        {
            stage.ZeroGradients();
            stage.ForwardLossBackward(x, 16, labels, 1f, []);
            adam.Step();
        }

        var after = stage.Evaluate(x, 16, labels);
        Assert.That(after.Loss, Is.LessThan(before * 0.5), "20 Adam steps on one batch");
        Assert.That(after.Correct, Is.EqualTo(16), "memorized");
    }

    [Test]
    public void BadSettingsAreRefusedWithTheReason()
    {
        using var stage = TinyStage(out _);
        Assert.That(() => Optimizer.Sgd(stage, 0.1, nesterov: true),
            Throws.TypeOf<TorchException>().With.Message.Contains("Nesterov momentum requires a momentum > 0"));
        Assert.That(() => Optimizer.Sgd(stage, -1),
            Throws.TypeOf<TorchException>().With.Message.Contains("learning rate must be a finite number >= 0"));
        Assert.That(() => Optimizer.Adam(stage, 0.1, beta1: 1.0),
            Throws.TypeOf<TorchException>().With.Message.Contains("beta1 must be in [0, 1)"));
        using var sgd = Optimizer.Sgd(stage, 0.1);
        Assert.That(() => sgd.LearningRate = double.NaN, Throws.TypeOf<TorchException>());
        Assert.That(sgd.LearningRate, Is.EqualTo(0.1), "a refused learning rate leaves the old one");
    }

    [Test]
    public void StepWithGraphsInFlightIsRefused()
    {
        using var stage = TinyStage(out _);
        using var sgd = Optimizer.Sgd(stage, 0.1);
        stage.Forward(0, new float[4], 1, new float[3]);
        Assert.That(() => sgd.Step(), Throws.TypeOf<TorchException>().With.Message.Contains("still holds 1 forward graph"));
        stage.Backward(0, new float[3], []);
        Assert.That(() => sgd.Step(), Throws.Nothing);
    }

    /// <summary>
    /// A checkpoint's optimizer state: an optimizer that imports another's exported state (and its parameters) takes
    /// the next steps bit for bit as the original does; SGD before its first step has no state, Adam its step count.
    /// </summary>
    [TestCase("sgd", 1, 0L)]
    [TestCase("nesterov", 1, 0L)]
    [TestCase("plain", 0, 0L)]
    [TestCase("adam", 2, 3L)]
    public void ImportedStateContinuesBitForBit(string kind, int tensors, long stepCount)
    {
        Optimizer Create(Stage s) => kind switch
        {
            "sgd" => Optimizer.Sgd(s, 0.1, 0.9, weightDecay: 0.01),
            "nesterov" => Optimizer.Sgd(s, 0.1, 0.8, nesterov: true),
            "plain" => Optimizer.Sgd(s, 0.1),
            _ => Optimizer.Adam(s, 0.01, weightDecay: 0.01),
        };

        using var original = TinyStage(out _);
        using var first = Create(original);
        if (kind != "adam")
        {
            Assert.That(first.ExportState().Tensors, Is.EqualTo(0), "no momentum buffer before the first step");
        }

        for (var t = 0; t < 3; t++)
        {
            SetGradient(original, t);
            first.Step();
        }

        var state = first.ExportState();
        Assert.That((state.Tensors, state.StepCount, state.Values.Length), Is.EqualTo((tensors, stepCount, tensors * original.Parameters.Length)));

        using var resumed = TinyStage(out _);
        using var second = Create(resumed);
        original.Parameters.CopyTo(resumed.Parameters);
        second.ImportState(state);
        Assert.That(second.ExportState().Values, Is.EqualTo(state.Values));
        for (var t = 3; t < 6; t++)
        {
            SetGradient(original, t);
            SetGradient(resumed, t);
            first.Step();
            second.Step();
        }

        Assert.That(resumed.Parameters.ToArray(), Is.EqualTo(original.Parameters.ToArray()), "bit for bit after 3 more steps");
    }

    [Test]
    public void StateOfTheWrongShapeIsRefused()
    {
        using var stage = TinyStage(out _);
        using var adam = Optimizer.Adam(stage, 0.01);
        using var plain = Optimizer.Sgd(stage, 0.1);
        var n = stage.Parameters.Length;
        Assert.That(() => adam.ImportState(new OptimizerState(1, 0, new float[n])),
            Throws.TypeOf<TorchException>().With.Message.Contains("Adam takes 2 state tensors"));
        Assert.That(() => plain.ImportState(new OptimizerState(1, 0, new float[n])),
            Throws.TypeOf<TorchException>().With.Message.Contains("SGD takes 0 state tensors, or 1"));
        Assert.That(() => adam.ImportState(new OptimizerState(2, 1, new float[n])), Throws.ArgumentException);
    }

    /// <summary>
    /// A pipeline stage can hold no parameters (a stage of only a flatten): its state is the right number of empty
    /// tensors, and exporting and importing them works (an empty array pinned by <c>fixed</c> would be a null pointer).
    /// </summary>
    [TestCase("sgd", 1)]
    [TestCase("adam", 2)]
    public void AStageWithoutParametersExportsAndImportsEmptyState(string kind, int tensors)
    {
        using var stage = Stage.Create([new("flatten")], [2, 2], seed: 9);
        using var optimizer = kind == "adam" ? Optimizer.Adam(stage, 0.01) : Optimizer.Sgd(stage, 0.1, 0.9);
        Assert.That(stage.Parameters.Length, Is.EqualTo(0));

        var steps = kind == "adam" ? 4L : 0L;
        Assert.That(() => optimizer.ImportState(new OptimizerState(tensors, steps, [])), Throws.Nothing);
        var state = optimizer.ExportState();
        Assert.That((state.Values.Length, state.StepCount), Is.EqualTo((0, steps)));
    }
}
