using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Torch;

/// <summary>
/// The bridge's gradient-ready hook through the C# stage: armed for one backward call only, once per parameter, with
/// the gradient already final in the flat buffer when it fires, and a callback's exception rethrown after the bridge.
/// </summary>
[TestFixture]
public sealed class GradientHookTests
{
    private const int Inputs = 4, Hidden = 5, Classes = 3, Batch = 6;

    private static Stage TwoLayers() => Stage.Create([new("linear", Inputs, Hidden), new("relu"), new("linear", Hidden, Classes)], [Inputs], seed: 2);

    /// <summary>Records each report: the parameter and a copy of its gradient at that moment.</summary>
    private sealed class Recorder(Stage stage)
    {
        public List<(int Parameter, float[] Gradient)> Reports { get; } = [];

        public void OnReady(int parameter)
        {
            var extent = stage.Layout[parameter];
            Reports.Add((parameter, stage.Gradients.Slice(extent.Offset, extent.Length).ToArray()));
        }
    }

    [Test]
    public void LayoutIsTheParametersInLayerOrderBackToBack()
    {
        using var stage = TwoLayers();
        Assert.That(stage.Layout, Is.EqualTo(new ParameterExtent[] { new(0, 20), new(20, 5), new(25, 15), new(40, 3) }),
            "weight 5x4, bias 5, weight 3x5, bias 3");
        Assert.That(stage.Layout.Sum(p => p.Length), Is.EqualTo(stage.ParameterCount));
    }

    [Test]
    public void ArmedBackwardReportsEveryParameterOnceWithItsFinalGradient()
    {
        using var stage = TwoLayers();
        var recorder = new Recorder(stage);
        stage.SetGradientHook(recorder.OnReady);
        var x = Uniform(Batch * Inputs, 1);
        var labels = Labels(Batch, Classes, 1);

        stage.ForwardLossBackward(x, Batch, labels, 1f, []);
        Assert.That(recorder.Reports, Is.Empty, "not armed: no report");

        stage.ZeroGradients();
        stage.ArmGradientHook(1);
        stage.ForwardLossBackward(x, Batch, labels, 1f, []);
        Assert.That(recorder.Reports.Select(r => r.Parameter).Order(), Is.EqualTo(new[] { 0, 1, 2, 3 }), "each parameter once");
        Assert.That(recorder.Reports[0].Parameter, Is.GreaterThanOrEqualTo(2), "backward reaches the last layer first");
        foreach (var (parameter, gradient) in recorder.Reports)
        {
            var extent = stage.Layout[parameter];
            Assert.That(gradient, Is.EqualTo(stage.Gradients.Slice(extent.Offset, extent.Length).ToArray()), $"parameter {parameter} final when reported");
            Assert.That(gradient.Any(g => g != 0), $"parameter {parameter} has a gradient");
        }

        recorder.Reports.Clear();
        stage.ForwardLossBackward(x, Batch, labels, 1f, []);
        Assert.That(recorder.Reports, Is.Empty, "armed for one call only");
    }

    [Test]
    public void WithMicroBatchesOnlyTheArmedLastBackwardReports()
    {
        using var stage = TwoLayers();
        var recorder = new Recorder(stage);
        stage.SetGradientHook(recorder.OnReady);
        var output = new float[Batch * Classes];
        var outputGradient = Uniform(Batch * Classes, 3);
        stage.ArmGradientHook(2);
        stage.Forward(0, Uniform(Batch * Inputs, 1), Batch, output);
        stage.Forward(1, Uniform(Batch * Inputs, 2), Batch, output);
        stage.Backward(0, outputGradient, []);
        Assert.That(recorder.Reports, Is.Empty, "the first of two micro-batches leaves the gradients partial");
        stage.Backward(1, outputGradient, []);
        Assert.That(recorder.Reports.Select(r => r.Parameter).Order(), Is.EqualTo(new[] { 0, 1, 2, 3 }));
        foreach (var (parameter, gradient) in recorder.Reports)
        {
            var extent = stage.Layout[parameter];
            Assert.That(gradient, Is.EqualTo(stage.Gradients.Slice(extent.Offset, extent.Length).ToArray()), "the sum over both micro-batches");
        }
    }

    [Test]
    public void CallbackExceptionIsRethrownAfterTheBridgeReturns()
    {
        using var stage = TwoLayers();
        var calls = 0;
        stage.SetGradientHook(parameter =>
        {
            calls++;
            throw new InvalidOperationException($"hook failed at parameter {parameter}");
        });
        var x = Uniform(Batch * Inputs, 1);
        var labels = Labels(Batch, Classes, 1);
        stage.ArmGradientHook(1);
        var error = Assert.Throws<InvalidOperationException>(() => stage.ForwardLossBackward(x, Batch, labels, 1f, []))!;
        Assert.That(error.Message, Does.StartWith("hook failed at parameter "));
        Assert.That(calls, Is.EqualTo(1), "after the first failure the callback is not called again in that backward");

        // The stage is intact: the next armed backward reports again.
        var reported = new List<int>();
        stage.SetGradientHook(reported.Add);
        stage.ArmGradientHook(1);
        stage.ForwardLossBackward(x, Batch, labels, 1f, []);
        Assert.That(reported.Order(), Is.EqualTo(new[] { 0, 1, 2, 3 }));
    }
}
