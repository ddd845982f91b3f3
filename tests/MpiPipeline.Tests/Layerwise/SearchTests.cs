using MpiPipeline.Layerwise;
using MpiPipeline.Scaling;

namespace MpiPipeline.Tests.Layerwise;

/// <summary>
/// The node and edge elimination search against brute force (every plan tried): random cost graphs, chains and not,
/// and the cost model's graphs of the zoo's models with a fake layer-time table (<see cref="TestCostModel"/>).
/// </summary>
[TestFixture]
internal sealed class SearchTests
{
    private static CostGraph RandomChain(Random random, int length, int maxConfigs)
    {
        var graph = new CostGraph();
        for (var i = 0; i < length; i++)
        {
            graph.AddNode(Costs(random, random.Next(1, maxConfigs + 1)));
            if (i > 0)
            {
                graph.AddEdge(i - 1, i, Table(random, graph.Nodes[i - 1].Length, graph.Nodes[i].Length));
            }
        }

        return graph;
    }

    private static double[] Costs(Random random, int count) => [.. Enumerable.Range(0, count).Select(_ => random.NextDouble())];

    private static double[,] Table(Random random, int rows, int columns)
    {
        var table = new double[rows, columns];
        for (var a = 0; a < rows; a++)
        {
            for (var b = 0; b < columns; b++)
            {
                table[a, b] = random.NextDouble();
            }
        }

        return table;
    }

    [Test]
    public void OnRandomChainsTheSearchFindsTheBruteForceOptimum()
    {
        var random = new Random(18);
        for (var trial = 0; trial < 200; trial++)
        {
            var graph = RandomChain(random, random.Next(1, 8), 5);
            var searched = GraphSearch.Optimize(graph);
            var best = GraphSearch.BruteForce(graph);
            Assert.That(graph.Cost(searched), Is.EqualTo(graph.Cost(best)).Within(1e-12), $"trial {trial}");
        }
    }

    /// <summary>
    /// Branches (a residual written as nodes: 0 -> 1 -> 2 -> 3 with a skip edge 0 -> 3, and parallel edges): node
    /// elimination of 1 and 2 leaves two edges 0 -> 3 that edge elimination merges; the result is still optimal.
    /// </summary>
    [Test]
    public void OnGraphsWithBranchesEliminationKeepsTheOptimum()
    {
        var random = new Random(4);
        for (var trial = 0; trial < 100; trial++)
        {
            var graph = RandomChain(random, 6, 4);
            graph.AddEdge(0, 3, Table(random, graph.Nodes[0].Length, graph.Nodes[3].Length));
            graph.AddEdge(2, 5, Table(random, graph.Nodes[2].Length, graph.Nodes[5].Length));
            graph.AddEdge(3, 4, Table(random, graph.Nodes[3].Length, graph.Nodes[4].Length));
            var searched = GraphSearch.Optimize(graph);
            Assert.That(graph.Cost(searched), Is.EqualTo(graph.Cost(GraphSearch.BruteForce(graph))).Within(1e-12), $"trial {trial}");
        }
    }

    [TestCase("linear", 2)]
    [TestCase("linear", 4)]
    [TestCase("mlp", 2)]
    [TestCase("mlp", 4)]
    [TestCase("deep-mlp:3:32", 4)]
    [TestCase("res-mlp:4:8", 4)]
    [TestCase("cnn", 2)]
    [TestCase("cnn-wide", 2)]
    public void OnTheZoosChainsTheSearchIsExact(string model, int ranks)
    {
        foreach (var network in new[] { LayerwiseNetwork.SharedMemory, LayerwiseNetwork.Emulated(EmulatedNetwork.Parse("1gbit")) })
        {
            var cost = TestCostModel.Of(model, ranks, network);
            var graph = cost.Graph();
            var searched = cost.Evaluate(cost.Search());
            var best = GraphSearch.BruteForce(graph);
            Assert.That(searched.Step, Is.EqualTo(graph.Cost(best)).Within(1e-9 * searched.Step), $"{model}, {ranks} ranks, {network.Name}");
            Assert.That(searched.Step, Is.LessThanOrEqualTo(cost.Evaluate(cost.DataParallel()).Step * (1 + 1e-12)));
            Assert.That(searched.Step, Is.LessThanOrEqualTo(cost.Evaluate(cost.ModelParallel()).Step * (1 + 1e-12)));
        }
    }

    /// <summary>
    /// The paper's point, under compute proportional to the work: on a slow shared link the 4096-wide linear layers
    /// of cnn-wide want model parallelism (their 25 MB of weights would cost a slow Allreduce) and the convolutions
    /// data parallelism (small weights, large activations); the searched plan beats both pure strategies.
    /// </summary>
    [TestCase(2)]
    [TestCase(4)]
    public void OnASlowLinkCnnWideSplitsItsLinearLayersByChannelAndItsConvsBySample(int ranks)
    {
        var cost = TestCostModel.Of("cnn-wide", ranks, LayerwiseNetwork.Emulated(EmulatedNetwork.Parse("1gbit")));
        var plan = cost.Search();
        Assert.That(plan[0].Sample, Is.EqualTo(ranks), $"first conv data parallel: {string.Join(" ", plan)}");
        Assert.That(plan[7].Channel, Is.GreaterThan(1), $"linear 1568-4096 channel-split: {string.Join(" ", plan)}");
        var searched = cost.Evaluate(plan).Step;
        Assert.That(searched, Is.LessThan(cost.Evaluate(cost.DataParallel()).Step));
        Assert.That(searched, Is.LessThan(cost.Evaluate(cost.ModelParallel()).Step));
    }

    [Test]
    public void TheCostIsTheSumOfComputeTransferAndSync()
    {
        var cost = TestCostModel.Of("mlp", 4);
        var plan = new[] { "n4c1h1", "n2c2h1", "n2c2h1", "n2c2h1" }.Select(LayerConfig.Parse).ToArray();
        var priced = cost.Evaluate(plan);
        Assert.That(priced.Step, Is.EqualTo(priced.Compute + priced.Transfer + priced.Sync));
        Assert.That(priced.Step, Is.EqualTo(cost.Graph().Cost(plan.Select((c, i) => cost.Configs[i].ToList().IndexOf(c)).ToArray())).Within(1e-15));
        Assert.That(priced.Layers[1].In.Forward, Is.EqualTo("Allgather"), "n4 -> n2c2: each rank needs its sample-half peer's whole block");
        Assert.That(priced.Layers[2].In, Is.SameAs(Transfer.None), "relu in the linear layer's layout");
        Assert.That(priced.Layers[3].In.Forward, Is.EqualTo("Allgather"));
        Assert.That(priced.Sync, Is.EqualTo(
            LayerwiseNetwork.SharedMemory.Sync(4 * (784 * 256 + 256), plan[1]) + LayerwiseNetwork.SharedMemory.Sync(4 * (256 * 10 + 10), plan[3])).Within(1e-15));
    }

    [Test]
    public void APlanThatIsNotAConfigurationOfItsLayerIsOneClearMessage()
    {
        var cost = TestCostModel.Of("mlp", 4);
        Assert.That(() => cost.Evaluate([.. new[] { "n4c1h1", "n4c1h1", "n4c1h1", "n1c4h1" }.Select(LayerConfig.Parse)]),
            Throws.TypeOf<InputException>().With.Message.Contains("layer 3 (linear 256 10): n1c4h1 is not one of its configurations"));
        Assert.That(() => TestCostModel.Of("res-mlp:3:8", 4, batch: 6),
            Throws.TypeOf<InputException>().With.Message.Contains("no configuration over 4 ranks with a global batch of 6").And.Message.Contains("--batch 8"));
    }
}
