using System.Text.Json;
using MpiPipeline.Torch;
using static MpiPipeline.Tests.Torch.TorchTestData;

namespace MpiPipeline.Tests.Torch;

/// <summary>
/// <c>--model torchscript:FILE</c> against what PyTorch itself computed with the same files
/// (tests/fixtures/torchscript/make_fixtures.py wrote the modules and their outputs): the eval-mode output, the
/// train-mode loss, every parameter's gradient where the flat layout puts it, BatchNorm's running statistics kept and
/// updated, pipeline cuts of an nn.Sequential; and the errors a user meets.
/// </summary>
[TestFixture]
public sealed class TorchScriptTests
{
    private const double Tolerance = 2e-5;

    private static string Fixture(string name) => Path.Combine(RepoPaths.Root, "tests", "fixtures", "torchscript", name);

    private static string Model(string file) => TorchScriptModel.Prefix + Fixture(file);

    private sealed record Reference(float[] Input, int Batch, int[] Labels, double[] EvalOutput, double TrainLoss,
        double[] EvalOutputAfterTrainForward, JsonElement[] Parameters);

    private static Reference Load(string json)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Fixture(json)));
        var root = document.RootElement.Clone();
        static double[] Doubles(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetDouble())];
        return new Reference([.. root.GetProperty("input").EnumerateArray().Select(v => v.GetSingle())],
            root.GetProperty("input_shape")[0].GetInt32(), [.. root.GetProperty("labels").EnumerateArray().Select(v => v.GetInt32())],
            Doubles(root.GetProperty("eval_output")), root.GetProperty("train_loss").GetDouble(),
            Doubles(root.GetProperty("eval_output_after_one_train_forward")), [.. root.GetProperty("parameters").EnumerateArray()]);
    }

    /// <summary>
    /// The eval output, then one train-mode forward + loss + backward: loss and each gradient as PyTorch got them, at the
    /// flat-buffer extent of that parameter (named_parameters order), then the eval output again: PyTorch's after the
    /// running statistics that one forward updated.
    /// </summary>
    private static void AssertMatchesPyTorch(Stage stage, Reference r)
    {
        var output = new float[r.Batch * stage.SampleOutputSize];
        stage.Infer(r.Input, r.Batch, output);
        AssertClose(output, r.EvalOutput, Tolerance, "eval output");

        var result = stage.ForwardLossBackward(r.Input, r.Batch, r.Labels, 1f, []);
        Assert.That(result.Loss, Is.EqualTo(r.TrainLoss).Within(Tolerance * Math.Max(1, r.TrainLoss)), "train-mode cross-entropy");

        var layout = stage.Layout;
        Assert.That(layout, Has.Count.EqualTo(r.Parameters.Length), "one extent per named parameter");
        Assert.That(layout.Sum(e => (long)e.Length), Is.EqualTo(stage.ParameterCount));
        for (var i = 0; i < layout.Count; i++)
        {
            var p = r.Parameters[i];
            var name = p.GetProperty("name").GetString();
            var extent = layout[i];
            Assert.That(extent.Length, Is.EqualTo(p.GetProperty("numel").GetInt32()), $"{name}: size");
            var values = stage.Parameters.Slice(extent.Offset, extent.Length);
            var gradient = stage.Gradients.Slice(extent.Offset, extent.Length);
            var firstValues = p.GetProperty("value_first").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            AssertClose(values[..firstValues.Length], firstValues, 0, $"{name}: the file's values");
            var firstGradients = p.GetProperty("grad_first").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            AssertClose(gradient[..firstGradients.Length], firstGradients, 1e-4, $"{name}: gradient");
            double sum = 0, squares = 0;
            foreach (var g in gradient)
            {
                sum += g;
                squares += (double)g * g;
            }

            // Relative, with an absolute floor: a bias before BatchNorm has a gradient of rounding noise only (BN takes
            // the mean out), ~1e-6, different in PyTorch and here.
            var norm = p.GetProperty("grad_norm").GetDouble();
            var bound = Math.Max(1e-4 * norm, 1e-5);
            Assert.That(Math.Sqrt(squares), Is.EqualTo(norm).Within(bound), $"{name}: gradient norm");
            Assert.That(sum, Is.EqualTo(p.GetProperty("grad_sum").GetDouble()).Within(bound * Math.Sqrt(extent.Length)), $"{name}: gradient sum");
        }

        stage.Infer(r.Input, r.Batch, output);
        AssertClose(output, r.EvalOutputAfterTrainForward, Tolerance, "eval output after one train-mode forward");
    }

    [Test]
    public void SequentialCnnMatchesPyTorchAndIsCutAtItsChildren()
    {
        var layers = ModelZoo.Build(Model("cnn.pt"), FashionMnistGeometry);
        Assert.That(layers.Select(l => l.ToString()), Is.EqualTo(new[]
        {
            "torchscript[0 Conv2d]", "torchscript[1 ReLU]", "torchscript[2 MaxPool2d]", "torchscript[3 Conv2d]", "torchscript[4 ReLU]",
            "torchscript[5 MaxPool2d]", "torchscript[6 Flatten]", "torchscript[7 Linear]", "torchscript[8 ReLU]", "torchscript[9 Linear]",
        }), "the children of the nn.Sequential, as the zoo's cnn");
        Assert.That(TorchScriptModel.WhyNotCut(layers, 4), Is.Null);

        var r = Load("cnn.json");
        using (var stage = Stage.Create(layers, FashionMnistShape, seed: 123))
        {
            var zoo = ModelZoo.Build("cnn", FashionMnistGeometry);
            using var zooCnn = Stage.Create(zoo, FashionMnistShape);
            Assert.That(stage.ParameterCount, Is.EqualTo(zooCnn.ParameterCount).And.EqualTo(206_922), "the zoo's cnn, parameter for parameter");
            Assert.That(stage.Layout.Select(e => e.Length), Is.EqualTo(zooCnn.Layout.Select(e => e.Length)), "and in the same layout");
            AssertMatchesPyTorch(stage, r);
        }

        // A pipeline's cuts: each piece takes the previous piece's output, and the chain gives the whole module's output.
        foreach (var cut in new[] { 1, 3, 7, 9 })
        {
            using var front = Stage.Create([.. layers.Take(cut)], FashionMnistShape);
            using var back = Stage.Create([.. layers.Skip(cut)], front.SampleOutputShape);
            Assert.That(front.ParameterCount + back.ParameterCount, Is.EqualTo(206_922), $"cut {cut}");
            var middle = new float[r.Batch * front.SampleOutputSize];
            var output = new float[r.Batch * back.SampleOutputSize];
            front.Infer(r.Input, r.Batch, middle);
            back.Infer(middle, r.Batch, output);
            AssertClose(output, r.EvalOutput, Tolerance, $"cut at {cut}: output");
        }
    }

    [Test]
    public void ModuleThatIsNotSequentialIsOneStageAndKeepsItsBatchNormStatistics()
    {
        var layers = ModelZoo.Build(Model("bn-net.pt"), FashionMnistGeometry);
        Assert.That(layers.Select(l => l.ToString()), Is.EqualTo(new[] { "torchscript[BnNet]" }));
        Assert.That(TorchScriptModel.WhyNotCut(layers, 1), Is.Null);
        Assert.That(TorchScriptModel.WhyNotCut(layers, 2), Does.Contain("not an nn.Sequential").And.Contain("--stages 1"));

        var r = Load("bn-net.json");
        Assert.That(Enumerable.Range(0, r.EvalOutput.Length).Max(i => Math.Abs(r.EvalOutput[i] - r.EvalOutputAfterTrainForward[i])),
            Is.GreaterThan(1e-3), "the fixture: one train-mode forward moves BatchNorm's running statistics");
        using var stage = Stage.Create(layers, FashionMnistShape);
        Assert.That(stage.ParameterCount, Is.EqualTo(2038), "running_mean, running_var and num_batches_tracked are buffers, not parameters");
        AssertMatchesPyTorch(stage, r);
    }

    [Test]
    public void DataShapeTheModuleDoesNotTakeIsNamed()
    {
        var ex = Assert.Throws<InputException>(() => ModelZoo.Build(Model("cnn.pt"), new SampleGeometry([3, 32, 32], 10)))!;
        Assert.That(ex.Message, Does.Contain("does not take samples of shape [3, 32, 32]").And.Contain("part 0 Conv2d")
            .And.Contain("weight of size [16, 1, 3, 3], expected input[1, 3, 32, 32] to have 1 channels, but got 3 channels instead"));
        Assert.That(ex.Message, Does.Not.Contain("Traceback"), "the TorchScript traceback is left out");

        var flat = Assert.Throws<InputException>(() => ModelZoo.Build(Model("bn-net.pt"), new SampleGeometry([784], 10)))!;
        Assert.That(flat.Message, Does.Contain("does not take samples of shape [784]").And.Contain("the module failed"));

        var classes = Assert.Throws<InputException>(() => ModelZoo.Build(Model("cnn.pt"), new SampleGeometry([1, 28, 28], 5)))!;
        Assert.That(classes.Message, Does.Contain("gives 10 values per sample").And.Contain("the data has 5 classes"));
    }

    [Test]
    public void FilesThatAreNotTorchScriptAreRefused()
    {
        var missing = Fixture("no-such-model.pt");
        Assert.That(() => ModelZoo.CheckName(TorchScriptModel.Prefix + missing),
            Throws.TypeOf<InputException>().With.Message.Contains($"the TorchScript file {missing} does not exist"));
        Assert.That(() => ModelZoo.Build("torchscript:", FashionMnistGeometry),
            Throws.TypeOf<InputException>().With.Message.Contains("give the TorchScript file"));

        foreach (var notScript in new[] { "not-script.pt", "cnn.json" })
        {
            var ex = Assert.Throws<InputException>(() => ModelZoo.Build(Model(notScript), FashionMnistGeometry))!;
            Assert.That(ex.Message, Does.StartWith($"--model torchscript:FILE: {Fixture(notScript)} is not a TorchScript module")
                .And.Contain("torch.jit.script(model).save(path)"), notScript);
        }
    }

    [Test]
    public void StageHoldsConsecutivePartsOfOneModuleOnly()
    {
        var cnn = ModelZoo.Build(Model("cnn.pt"), FashionMnistGeometry);
        var bn = ModelZoo.Build(Model("bn-net.pt"), FashionMnistGeometry);
        Assert.That(() => Stage.Create([cnn[0], new("relu")], FashionMnistShape),
            Throws.TypeOf<TorchException>().With.Message.Contains("consecutive parts of one file and no other layers"));
        Assert.That(() => Stage.Create([cnn[0], cnn[2]], FashionMnistShape), Throws.TypeOf<TorchException>());
        Assert.That(() => Stage.Create([bn[0], cnn[1]], FashionMnistShape), Throws.TypeOf<TorchException>());
        Assert.That(cnn[1], Is.Not.EqualTo(new LayerSpec("torchscript", 1)), "the part's file and name are part of the layer");
    }
}
