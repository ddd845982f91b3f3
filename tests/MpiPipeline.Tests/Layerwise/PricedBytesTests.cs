using MpiPipeline.Layerwise;

namespace MpiPipeline.Tests.Layerwise;

/// <summary>
/// The cost model prices exactly what the engine sends: for every layer of cnn, cnn-wide and mlp at R = 2 and 4 and
/// every pair of configurations the search may give two neighbours, the bytes per rank forward and backward of the
/// cost model's edge (<see cref="Redistribution"/>, on <see cref="LayerNode"/>s) equal the engine's
/// (<see cref="TransferCosts"/>, on the <see cref="PlannedLayer"/>s it builds from the same shapes); likewise the
/// transfer to the loss. And every
/// configuration the search may choose is one the engine runs (<see cref="LayerGeometry.Refusal"/>).
/// </summary>
[TestFixture]
internal sealed class PricedBytesTests
{
    private const int Batch = TestCostModel.Batch;

    private static PlannedLayer Planned(LayerNode node, LayerConfig config) =>
        new(node.Index, node.Spec, ActivationShape.Of(node.InputShape), ActivationShape.Of(node.OutputShape), config);

    [TestCase("cnn", 2)]
    [TestCase("cnn", 4)]
    [TestCase("cnn-wide", 2)]
    [TestCase("cnn-wide", 4)]
    [TestCase("mlp", 2)]
    [TestCase("mlp", 4)]
    public void TheCostModelsBytesAreTheEnginesForEveryPairOfConfigurations(string model, int ranks)
    {
        // The layers and each one's configurations exactly as the search sees them.
        var cost = TestCostModel.Of(model, ranks);
        var (layers, configs) = (cost.Layers, cost.Configs);
        var pairs = 0;
        for (var i = 0; i < layers.Count; i++)
        {
            foreach (var config in configs[i])
            {
                var layer = Planned(layers[i], config);
                Assert.That(LayerGeometry.Refusal(layer, Batch), Is.Null, $"{model} layer {i} ({layers[i].Spec}) {config}: searchable but refused by the engine");
                if (i == layers.Count - 1)
                {
                    AssertSame(Redistribution.ToLoss(layers[i], config, Batch), TransferCosts.ToLoss(layer, Batch, ranks), $"{model} loss from {config}");
                }

                if (i == 0)
                {
                    continue;
                }

                foreach (var from in configs[i - 1])
                {
                    var priced = Redistribution.Between(from, layers[i], config, Batch);
                    var sent = TransferCosts.Between(Planned(layers[i - 1], from), layer, Batch, ranks);
                    AssertSame(priced, sent, $"{model} layer {i} ({layers[i].Spec}) {from} -> {config}");
                    pairs++;
                }
            }
        }

        Assert.That(pairs, Is.GreaterThan(layers.Count), "every layer has several configurations");
        TestContext.Out.WriteLine($"{model} R = {ranks}: {pairs} transitions agree");
    }

    private static void AssertSame(Transfer priced, TransferCost sent, string what)
    {
        Assert.That(priced.Kind, Is.EqualTo(sent.Kind), what);
        Assert.That(priced.Sent.DefaultIfEmpty().Max(), Is.EqualTo(sent.ForwardBytesPerRank), $"{what}: forward bytes of the busiest rank");
        Assert.That(priced.Received.DefaultIfEmpty().Max(), Is.EqualTo(sent.BackwardBytesPerRank), $"{what}: backward bytes of the busiest rank");
    }
}
