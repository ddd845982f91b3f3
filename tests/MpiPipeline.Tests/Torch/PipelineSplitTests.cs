using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Torch;

/// <summary>
/// A model cut into stages, activations and gradients passed through float arrays as a pipeline would, gives the
/// unsplit model's gradients; several micro-batches in flight, backwarded in any order, give the sequential result.
/// </summary>
[TestFixture]
public sealed class PipelineSplitTests
{
    private static readonly int[] SampleShape = [2, 6, 6];

    private static readonly LayerSpec[] Model =
    [
        new("conv2d", 2, 4, 3, 1, 1),
        new("relu"),
        new("maxpool2d", 2),
        new("flatten"),
        new("linear", 36, 16),
        new("tanh"),
        LayerSpec.Residual(new("linear", 16, 16), new("gelu")),
        new("linear", 16, 5),
    ];

    /// <summary>Gradients of the whole model, one stage, for the given micro-batches (each with loss scale 1/M).</summary>
    private static float[] WholeModelGradients(float[][] inputs, int[][] labels, int batch, out float[][] inputGradients)
    {
        using var whole = Stage.Create(Model, SampleShape, seed: 17);
        inputGradients = new float[inputs.Length][];
        for (var m = 0; m < inputs.Length; m++)
        {
            inputGradients[m] = new float[inputs[m].Length];
            whole.ForwardLossBackward(inputs[m], batch, labels[m], 1f / inputs.Length, inputGradients[m]);
        }

        return whole.Gradients.ToArray();
    }

    private static List<Stage> Split(params int[] cuts)
    {
        using var whole = Stage.Create(Model, SampleShape, seed: 17);
        var stages = new List<Stage>();
        var offset = 0;
        var shape = SampleShape;
        var bounds = cuts.Prepend(0).Append(Model.Length).ToArray();
        for (var s = 0; s + 1 < bounds.Length; s++)
        {
            var stage = SliceOf(whole, Model[bounds[s]..bounds[s + 1]], shape, ref offset);
            stages.Add(stage);
            shape = stage.SampleOutputShape;
        }

        Assert.That(offset, Is.EqualTo(whole.ParameterCount), "the stages' flat buffers tile the whole model's");
        return stages;
    }

    private static (float[][] Inputs, int[][] Labels) MicroBatches(int count, int batch)
    {
        var inputs = Enumerable.Range(0, count).Select(m => Uniform(batch * 72, 100 + m)).ToArray();
        var labels = Enumerable.Range(0, count).Select(m => Labels(batch, 5, 200 + m)).ToArray();
        return (inputs, labels);
    }

    [TestCase(new[] { 4 }, 1, TestName = "TwoStages_OneMicroBatch")]
    [TestCase(new[] { 3 }, 4, TestName = "TwoStages_FourMicroBatches")]
    [TestCase(new[] { 2, 6 }, 1, TestName = "ThreeStages_OneMicroBatch")]
    [TestCase(new[] { 1, 5 }, 3, TestName = "ThreeStages_ThreeMicroBatches")]
    public void SplitGradientsEqualTheWholeModels(int[] cuts, int microBatches)
    {
        const int batch = 4;
        var (inputs, labels) = MicroBatches(microBatches, batch);
        var expected = WholeModelGradients(inputs, labels, batch, out var expectedInputGradients);
        Assert.That(expected.Count(g => g != 0), Is.GreaterThan(expected.Length / 2), "a comparison of real gradients");
        var stages = Split(cuts);
        try
        {
            for (var m = 0; m < microBatches; m++)
            {
                // Forward through the first stages (asking for the input gradient everywhere), loss on the last.
                var activations = new List<float[]> { inputs[m] };
                for (var s = 0; s + 1 < stages.Count; s++)
                {
                    var output = new float[batch * stages[s].SampleOutputSize];
                    stages[s].Forward(m, activations[^1], batch, output, requireInputGradient: true);
                    activations.Add(output);
                }

                var gradient = new float[activations[^1].Length];
                stages[^1].ForwardLossBackward(activations[^1], batch, labels[m], 1f / microBatches, gradient);
                for (var s = stages.Count - 2; s >= 0; s--)
                {
                    var inputGradient = new float[activations[s].Length];
                    stages[s].Backward(m, gradient, inputGradient);
                    gradient = inputGradient;
                }

                AssertClose(gradient, expectedInputGradients[m], 1e-6, $"input gradient of micro-batch {m}");
            }

            var split = stages.SelectMany(s => s.Gradients.ToArray()).ToArray();
            AssertClose(split, expected, 1e-6, "parameter gradients");
        }
        finally
        {
            stages.ForEach(s => s.Dispose());
        }
    }

    [Test]
    public void SlotsInFlightBackwardedInAnyOrderEqualSequential()
    {
        const int batch = 3, microBatches = 3;
        var (inputs, labels) = MicroBatches(microBatches, batch);
        var expected = WholeModelGradients(inputs, labels, batch, out _);
        var stages = Split(5);
        var (first, last) = (stages[0], stages[1]);
        try
        {
            // Three forwards in flight on the first stage, like GPipe's fill phase.
            var activations = new float[microBatches][];
            for (var m = 0; m < microBatches; m++)
            {
                activations[m] = new float[batch * first.SampleOutputSize];
                first.Forward(m + 10, inputs[m], batch, activations[m]);
            }

            Assert.That(first.LiveSlots, Is.EqualTo(3));
            var gradients = new float[microBatches][];
            for (var m = 0; m < microBatches; m++)
            {
                gradients[m] = new float[activations[m].Length];
                last.ForwardLossBackward(activations[m], batch, labels[m], 1f / microBatches, gradients[m]);
            }

            foreach (var m in new[] { 2, 0, 1 })
            {
                first.Backward(m + 10, gradients[m], []);
            }

            Assert.That(first.LiveSlots, Is.Zero);
            AssertClose([.. first.Gradients, .. last.Gradients], expected, 1e-6, "parameter gradients");
        }
        finally
        {
            stages.ForEach(s => s.Dispose());
        }
    }
}
