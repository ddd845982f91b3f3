using MpiPipeline.Pipeline;
using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Pipeline;

/// <summary>
/// The last stage's loss in C# against libtorch's fused cross-entropy: forward to logits, <see cref="CrossEntropy"/>,
/// backward from its dL/dz gives the loss, the accuracy, the parameter and the input gradients of
/// <see cref="Stage.ForwardLossBackward"/>.
/// </summary>
[TestFixture]
internal sealed class CrossEntropyTests
{
    private static readonly LayerSpec[] Head = [new("linear", 12, 8), new("tanh"), new("linear", 8, 5)];

    [TestCase(1, 1f)]
    [TestCase(7, 0.25f)]
    public void MatchesTheFusedLibtorchLoss(int batch, float lossScale)
    {
        var input = Uniform(batch * 12, 3, scale: 2f);
        var labels = Labels(batch, 5, 4);
        using var fused = Stage.Create(Head, [12], seed: 5);
        using var split = Stage.Create(Head, [12], seed: 5);
        var fusedInputGradient = new float[input.Length];
        var expected = fused.ForwardLossBackward(input, batch, labels, lossScale, fusedInputGradient);

        var logits = new float[batch * 5];
        split.Forward(0, input, batch, logits, requireInputGradient: true);
        var logitGradient = new float[logits.Length];
        var actual = CrossEntropy.LossAndGradient(logits, batch, labels, lossScale, logitGradient);
        var inputGradient = new float[input.Length];
        split.Backward(0, logitGradient, inputGradient);

        Assert.That(actual.Loss, Is.EqualTo(expected.Loss).Within(1e-6).Percent);
        Assert.That(actual.Correct, Is.EqualTo(expected.Correct));
        Assert.That(actual.Count, Is.EqualTo(batch));
        AssertClose(split.Gradients, fused.Gradients, 1e-6, "parameter gradients");
        AssertClose(inputGradient, fusedInputGradient, 1e-6, "input gradients");
    }

    [Test]
    public void HandComputedValues()
    {
        // Two samples, three classes: z = (0, 0, 0) label 1 -> loss ln 3, softmax 1/3 each;
        // z = (1000, 0, 0) label 0 -> loss 0 (no overflow), gradient 0; argmax of the first is class 0 (the first maximum).
        float[] logits = [0, 0, 0, 1000, 0, 0];
        var gradient = new float[6];
        var result = CrossEntropy.LossAndGradient(logits, 2, [1, 0], 1f, gradient);
        Assert.That(result.Loss, Is.EqualTo(Math.Log(3) / 2).Within(1e-6));
        Assert.That(result.Correct, Is.EqualTo(1));
        var third = 1.0 / 3 / 2;
        Assert.That(gradient, Is.EqualTo(new[] { third, third - 0.5, third, 0, 0, 0 }).Within(1e-7));
    }

    [Test]
    public void RejectsLabelsOutsideTheClasses() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.LossAndGradient([0f, 0f], 1, [2], 1f, new float[2]));
}
