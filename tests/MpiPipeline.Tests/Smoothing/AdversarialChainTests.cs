using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Smoothing;
using MpiPipeline.Torch;
using static MpiPipeline.Tests.Smoothing.SmoothingTestHelpers;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>
/// The torch-backed chain of the Figure 3 experiment: node VJPs against finite differences on a tiny network, the
/// objective against a direct computation on the whole model, the cut into nodes, and the batched oracle.
/// </summary>
[TestFixture]
internal sealed class AdversarialChainTests
{
    private const int D = 6;
    private const int Images = 2;

    /// <summary>A tiny smooth classifier (tanh) on samples of 6 values, 4 classes: 3 units.</summary>
    private static readonly LayerSpec[] Tiny =
    [
        new("linear", D, 5), new("tanh"), new("linear", 5, 5), new("tanh"), new("linear", 5, 4),
    ];

    private static readonly float[] ImageData = [0.3f, -0.2f, 0.9f, 0.1f, -0.7f, 0.4f, -0.5f, 0.8f, 0.2f, -0.1f, 0.6f, -0.3f];
    private static readonly int[] LabelData = [1, 3];

    private static AdversarialChain TinyChain(int depth, double kappa = 10, double lambda = 0.3) =>
        AdversarialChain.Create(Tiny, [D], depth, "tiny", [], hasParameters: false, ImageData, LabelData, kappa, lambda, seed: 4);

    [Test]
    public void EveryNodesVectorJacobianProductMatchesFiniteDifferences()
    {
        // Each node j: the gradient of s(x) = v . node_j(x) by Backward(x, v) against central differences (float32 inside).
        using var adversarial = TinyChain(3);
        var chain = adversarial.Chain;
        var x = RandomPoint(D, 1, 0.5);
        for (var j = 0; j < chain.Depth; j++)
        {
            var node = chain.Nodes[j];
            var v = RandomPoint(node.OutputDimension, 10 + j);
            var gx = new double[node.InputDimension];
            node.Backward(x, v, gx);
            var numeric = CentralDifferences(p => Dot(v, Apply(node, p)), x, 1e-2);
            Assert.That(MaxDifference(gx, numeric), Is.LessThan(2e-3 * Math.Max(1, gx.Max(Math.Abs))), $"node {j}");
            x = Apply(node, x); // the next node's input
        }
    }

    [Test]
    public void ChainGradientMatchesFiniteDifferencesOfTheObjective()
    {
        // kappa = 10 keeps every image above the clip, so f is smooth (tanh network, the max's arg fixed near delta).
        using var adversarial = TinyChain(3);
        var chain = adversarial.Chain;
        var delta = RandomPoint(D, 2, 0.3);
        var g = ChainGradient(chain, delta);
        var numeric = CentralDifferences(p => chain.Value(p), delta, 1e-2);
        Assert.That(MaxDifference(g, numeric), Is.LessThan(2e-3));
    }

    [Test]
    public void TheObjectiveIsTheMarginLossOfTheWholeModelPlusThePenalty()
    {
        const double kappa = 0.05, lambda = 0.3;
        using var adversarial = TinyChain(3, kappa, lambda);
        using var whole = Stage.Create(Tiny, [D], "cpu", 4); // node 0 is seeded with seed + 0: same first layer ...
        // ... but nodes 1, 2 are seeded with seed + 1, seed + 2: copy every node's parameters into the whole model.
        var offset = 0;
        foreach (var node in adversarial.Chain.Nodes.Cast<TorchChainNode>())
        {
            node.Stage.Parameters.CopyTo(whole.Parameters[offset..]);
            offset += node.Stage.Parameters.Length;
        }

        Assert.That(offset, Is.EqualTo(whole.ParameterCount));
        var delta = RandomPoint(D, 3, 0.4);
        var inputs = new float[Images * D];
        for (var i = 0; i < Images; i++)
        {
            for (var p = 0; p < D; p++)
            {
                inputs[i * D + p] = (float)(ImageData[i * D + p] + delta[p]);
            }
        }

        var logits = new float[Images * 4];
        whole.Infer(inputs, Images, logits);
        var expected = 0.0;
        for (var i = 0; i < Images; i++)
        {
            var z = logits.AsSpan(i * 4, 4).ToArray();
            var others = z.Where((_, j) => j != LabelData[i]).Max();
            expected += Math.Max(z[LabelData[i]] - (double)others, -kappa) / Images;
        }

        expected += lambda / 2 * delta.Sum(v => v * v);
        Assert.That(adversarial.Chain.Value(delta), Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void TrainedParametersAreSlicedInLayerOrder()
    {
        // The flat parameters of the whole model, loaded node by node, give the whole model's logits.
        using var whole = Stage.Create(Tiny, [D], "cpu", 9);
        var flat = whole.Parameters.ToArray();
        using var adversarial = AdversarialChain.Create(Tiny, [D], 3, "tiny", flat, hasParameters: true, ImageData, LabelData, 100, 0, seed: 1);
        var offset = 0;
        foreach (var node in adversarial.Chain.Nodes.Cast<TorchChainNode>())
        {
            Assert.That(node.Stage.Parameters.ToArray(), Is.EqualTo(flat.AsSpan(offset, node.Stage.Parameters.Length).ToArray()));
            offset += node.Stage.Parameters.Length;
        }

        Assert.That(() => AdversarialChain.Create(Tiny, [D], 3, "tiny", flat.AsSpan(1).ToArray(), true, ImageData, LabelData, 1, 0, 1),
            Throws.TypeOf<InputException>().With.Message.Contains("was it trained with this --model"));
    }

    [TestCase("deep-mlp:20:8", 20, 20, 2)]
    [TestCase("deep-mlp:20:8", 5, 5, 8)]
    [TestCase("res-mlp:12:4", 12, 12, 2)]
    [TestCase("res-mlp:12:4", 4, 4, 4)]
    public void ModelsAreCutIntoDeltaNodesOfWholeUnits(string model, int depth, int nodes, int firstNodeLayers)
    {
        var layers = ModelZoo.Build(model, FashionMnistGeometry);
        var groups = AdversarialChain.CutIntoNodes(layers, depth, model);
        Assert.That(groups, Has.Count.EqualTo(nodes));
        Assert.That(groups[0], Is.EqualTo(new LayerRange(0, firstNodeLayers)));
        Assert.That(groups[^1].End, Is.EqualTo(layers.Count));
        for (var j = 1; j < groups.Count; j++)
        {
            Assert.That(groups[j].Start, Is.EqualTo(groups[j - 1].End));
        }

        Assert.That(() => AdversarialChain.CutIntoNodes(layers, layers.Count, model),
            Throws.TypeOf<InputException>().With.Message.Contains("chain nodes"));
    }

    [Test]
    public void TheBatchedOracleIsTheMicroBatchedOneUpToFloatRoundingAndKeepsTheClock()
    {
        using var adversarial = TinyChain(3, kappa: 0.5);
        var chain = adversarial.Chain;
        const int count = 5;
        var points = RandomPoint(count * D, 6, 0.6);
        var (values, gradients) = (new double[count], new double[count * D]);
        var (batchedValues, batchedGradients) = (new double[count], new double[count * D]);
        var reference = new ChainOracle(chain);
        var batched = new BatchedChainOracle(chain);
        reference.Evaluate(points, count, values, gradients);
        batched.Evaluate(points, count, batchedValues, batchedGradients);
        Assert.That(MaxDifference(batchedValues, values), Is.LessThan(1e-5));
        Assert.That(MaxDifference(batchedGradients, gradients), Is.LessThan(1e-5));
        Assert.That(batched.ElapsedTimeUnits, Is.EqualTo(reference.ElapsedTimeUnits).And.EqualTo(2 * (count + 3 - 1)));
    }

    [Test]
    public void TheBatchedOracleGivesThePureChainsExactly()
    {
        // Nodes without a batched form are run point by point: the same operations as ChainOracle, bit for bit.
        var f = NonSmoothWorstCase.ForHorizon(40, 4, 1, 1);
        var parameters = PprsParameters.Defaults(1, 1, f.Dimension, 6) with { Samples = 4 };
        var start = new double[f.Dimension];
        var reference = new Pprs(parameters, 3).Run(f.ToOracle(4), start);
        var batched = new Pprs(parameters, 3).Run(new BatchedChainOracle(f.ToChain(4)), start);
        Assert.That(batched.Records, Is.EqualTo(reference.Records));
        Assert.That(batched.FinalIterate, Is.EqualTo(reference.FinalIterate));
    }

    private static double[] Apply(IChainNode node, double[] x)
    {
        var y = new double[node.OutputDimension];
        node.Forward(x, y);
        return y;
    }

    private static double Dot(double[] a, double[] b) => a.Zip(b, (p, q) => p * q).Sum();

    private static double MaxDifference(double[] a, double[] b) => a.Zip(b, (p, q) => Math.Abs(p - q)).Max();
}
