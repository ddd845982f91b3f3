using MpiPipeline.Mpi;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

/// <summary>Bad specs, sizes, slots, labels and devices: a typed exception with the bridge's message; the process and the stage survive.</summary>
[TestFixture]
public sealed class ErrorTests
{
    private static readonly int[] Image = FashionMnistShape;

    private static void AssertRefused(Action action, params string[] fragments)
    {
        var ex = Assert.Throws<TorchException>(() => action())!;
        Assert.That(ex.Status, Is.EqualTo(BridgeStatus.InvalidArgument), ex.Message);
        foreach (var fragment in fragments)
        {
            Assert.That(ex.Message, Does.Contain(fragment));
        }
    }

    [Test]
    public void LinearWithTheWrongInputSizeNamesTheLayerAndBothSizes() =>
        AssertRefused(() => Stage.Create([new("flatten"), new("relu"), new("linear", 100, 10)], Image),
            "layer 2 (linear 100 10)", "expects 100 input features", "gives 784", "mpp_stage_create");

    [Test]
    public void UnknownKindListsTheKnownOnes() =>
        AssertRefused(() => Stage.Create([new("flatten"), new("lstm", 4)], Image),
            "layer 1: unknown layer kind 'lstm'", "known: linear, conv2d");

    [Test]
    public void LinearOnAnImageAsksForFlatten() =>
        AssertRefused(() => Stage.Create([new("linear", 784, 10)], Image), "put a flatten before it");

    [Test]
    public void ConvOnAFlatInputSaysWhatItNeeds() =>
        AssertRefused(() => Stage.Create([new("flatten"), new("conv2d", 1, 4, 3)], Image), "needs an image input");

    [Test]
    public void ConvWithTheWrongChannelCount() =>
        AssertRefused(() => Stage.Create([new("conv2d", 3, 4, 3)], Image), "expects 3 input channels, the input has 1");

    [Test]
    public void KernelLargerThanTheImage() =>
        AssertRefused(() => Stage.Create([new("conv2d", 1, 4, 30)], Image), "kernel 30 does not fit a size of 28");

    [Test]
    public void WrongArgumentCount() =>
        AssertRefused(() => Stage.Create([new("flatten"), new("linear", 784)], Image), "takes 2 arguments", "got 1");

    [Test]
    public void ResidualThatChangesTheShape() =>
        AssertRefused(() => Stage.Create([new("flatten"), LayerSpec.Residual(new LayerSpec("linear", 784, 10))], Image),
            "the residual body must keep the shape", "[784]", "[10]");

    [Test]
    public void ErrorInsideAResidualBodyNamesItsPath() =>
        AssertRefused(() => Stage.Create([new("flatten"), LayerSpec.Residual(new("relu"), new("linear", 10, 10))], Image),
            "layer 1.1 (linear 10 10)");

    [Test]
    public void KindThatIsNotANameIsRefusedBeforeTheBridge() =>
        AssertRefused(() => Stage.Create([new("relu;linear", 1, 2)], Image), "'relu;linear' is not a name");

    [Test]
    public void EmptyLayerListAndBadShapes()
    {
        AssertRefused(() => Stage.Create([], Image), "at least one layer");
        AssertRefused(() => Stage.Create([new("relu")], [1, 0, 28]), "not positive");
        AssertRefused(() => Stage.Create([new("relu")], []), "1 to 8 dimensions");
        AssertRefused(() => Stage.Create([new("dropout", 150)], [4]), "between 0 and 100");
    }

    [Test]
    public void BadDevices()
    {
        AssertRefused(() => Stage.Create([new("relu")], [4], "tpu"), "unknown device 'tpu'");
        AssertRefused(() => Stage.Create([new("relu")], [4], "cuda:x"), "is not cpu or cuda:N");
        if (!TorchRuntime.CudaAvailable)
        {
            AssertRefused(() => Stage.Create([new("relu")], [4], "cuda:0"), "cuda:0 requested");
        }

        AssertRefused(() => Stage.Create([new("relu")], [4], "cuda:99"), "cuda:99 requested");
    }

    [Test]
    public void WrongSizesAreRefusedAndTheStageStillWorks()
    {
        using var stage = Stage.Create(ModelZoo.Build("mlp", FashionMnistGeometry), Image);
        var x = new float[2 * 784];
        var y = new float[20];
        AssertRefused(() => stage.Forward(0, new float[10], 2, y), "the input has 10 floats, expected batch 2 x 784 = 1568");
        AssertRefused(() => stage.Forward(0, x, 2, new float[19]), "the output buffer has 19 floats");
        AssertRefused(() => stage.Forward(0, x, 0, y), "the batch size must be positive");
        AssertRefused(() => stage.Infer(x, 3, y), "expected batch 3 x 784");
        AssertRefused(() => stage.ForwardLossBackward(x, 2, [1], 1f, []), "got 1 labels for a batch of 2");
        AssertRefused(() => stage.ForwardLossBackward(x, 2, [1, 10], 1f, []), "label 10 (sample 1) is outside 0..9");
        AssertRefused(() => stage.Evaluate(x, 2, [-1, 0]), "label -1");
        AssertRefused(() => stage.ForwardLossBackward(x, 2, [1, 2], 1f, new float[5]), "the input gradient buffer has 5 floats");
        Assert.That(stage.LiveSlots, Is.Zero, "refused calls leave no graph behind");
        Assert.That(stage.Gradients.ToArray(), Is.All.EqualTo(0f), "nor gradients");

        stage.Forward(0, x, 2, y);
        stage.Backward(0, new float[20], []);
        Assert.That(stage.Evaluate(x, 2, [1, 2]).Count, Is.EqualTo(2), "the stage works after the errors");
    }

    [Test]
    public void SlotMisuse()
    {
        using var stage = Stage.Create([new("linear", 4, 3)], [4]);
        var x = new float[8];
        var y = new float[6];
        stage.Forward(1, x, 2, y);
        AssertRefused(() => stage.Forward(1, x, 2, y), "slot 1 already holds a forward graph", "slots in flight: 1");
        AssertRefused(() => stage.Backward(2, y, []), "slot 2 holds no forward graph", "slots in flight: 1");
        AssertRefused(() => stage.Forward(-1, x, 2, y), "not negative");
        AssertRefused(() => stage.Backward(1, new float[5], []), "the output gradient has 5 floats, expected batch 2 x 3");
        AssertRefused(() => stage.Backward(1, y, new float[8]), "was forwarded without requireInputGradient");
        Assert.That(stage.LiveSlots, Is.EqualTo(1), "a refused backward keeps the slot");
        stage.Backward(1, y, []);
        AssertRefused(() => stage.Backward(1, y, []), "slot 1 holds no forward graph", "slots in flight: none");
    }

    [Test]
    public void LossOnAStageThatDoesNotOutputClassScores()
    {
        using var stage = Stage.Create([new("conv2d", 1, 2, 3)], Image);
        AssertRefused(() => stage.Evaluate(new float[784], 1, [0]), "a loss needs class scores per sample", "[2, 26, 26]");
    }

    [Test]
    public void DisposedStageAndOptimizer()
    {
        var stage = Stage.Create([new("linear", 4, 3)], [4]);
        var sgd = Optimizer.Sgd(stage, 0.1);
        stage.Dispose();
        Assert.That(() => stage.Parameters.Length, Throws.TypeOf<ObjectDisposedException>());
        Assert.That(() => stage.Infer(new float[4], 1, new float[3]), Throws.TypeOf<ObjectDisposedException>());
        Assert.That(() => sgd.Step(), Throws.TypeOf<ObjectDisposedException>());
        sgd.Dispose();
        Assert.That(() => sgd.Step(), Throws.TypeOf<ObjectDisposedException>());
        stage.Dispose();
    }

    [Test]
    public void UnknownModelNamesListTheKnownOnes()
    {
        var ex = Assert.Throws<InputException>(() => ModelZoo.Build("resnet50", FashionMnistGeometry))!;
        Assert.That(ex.Message, Does.Contain("unknown model 'resnet50'").And.Contain("mlp, cnn, cnn-wide, deep-mlp:N"));
        Assert.That(() => ModelZoo.Build("deep-mlp:0", FashionMnistGeometry), Throws.TypeOf<InputException>().With.Message.Contains("layer count"));
        Assert.That(() => ModelZoo.Build("deep-mlp:x", FashionMnistGeometry), Throws.TypeOf<InputException>());
        Assert.That(() => ModelZoo.Build("mlp:3", FashionMnistGeometry), Throws.TypeOf<InputException>());
    }

    [Test]
    public void BadThreadCount() =>
        AssertRefused(() => TorchRuntime.Threads = 0, "the thread count must be positive");
}
