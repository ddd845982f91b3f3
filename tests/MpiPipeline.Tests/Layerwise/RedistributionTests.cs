using System.Globalization;
using System.Text.RegularExpressions;
using MpiPipeline.Layerwise;
using MpiPipeline.Scaling;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Layerwise;

/// <summary>
/// The bytes and collectives of each transition, worked out by hand from the contract's blocks and rank order
/// (r = (s * Channel + c) * Height + h, 4-byte values), and their alpha-beta prices.
/// </summary>
[TestFixture]
internal sealed class RedistributionTests
{
    private static readonly IReadOnlyList<LayerNode> Linears = LayerNode.Of([new LayerSpec("linear", 8, 8), new LayerSpec("linear", 8, 4)], [8]);

    private static Transfer Into(IReadOnlyList<LayerNode> layers, int layer, string from, string to, int batch) =>
        Redistribution.Between(LayerConfig.Parse(from), layers[layer], LayerConfig.Parse(to), batch);

    // Batch 4 x 8 features. Allgather: each rank holds 4 x 4 values and needs 4 x 8: 16 values (64 B) from its peer.
    // n2 -> n1c2: each holds 2 samples x 8 and needs all 4 x 8: its peer's whole block, 64 B, an Allgather too.
    // n1c2 -> n2: each sends the other half of its samples of its features: parts of blocks, an Alltoallv.
    // n2c2 -> n1c4 on 4 ranks: each holds 2 x 4 = 8 values, needs all 32: 24 values (96 B) from 3 peers.
    [TestCase("n1c2h1", "n1c2h1", "Allgather", "Reduce-scatter", new long[] { 64, 64 }, new long[] { 64, 64 }, 1)]
    [TestCase("n1c2h1", "n2c1h1", "Alltoall(v)", "Alltoall(v), added", new long[] { 32, 32 }, new long[] { 32, 32 }, 1)]
    [TestCase("n2c1h1", "n1c2h1", "Allgather", "Reduce-scatter", new long[] { 64, 64 }, new long[] { 64, 64 }, 1)]
    [TestCase("n2c2h1", "n1c4h1", "Allgather", "Reduce-scatter", new long[] { 96, 96, 96, 96 }, new long[] { 96, 96, 96, 96 }, 3)]
    [TestCase("n2c2h1", "n2c2h1", "Allgather", "Reduce-scatter", new long[] { 32, 32, 32, 32 }, new long[] { 32, 32, 32, 32 }, 1)]
    public void LinearInputs(string from, string to, string forward, string backward, long[] sent, long[] received, int peers)
    {
        var transfer = Into(Linears, 1, from, to, 4);
        Assert.That((transfer.Forward, transfer.Backward), Is.EqualTo((forward, backward)));
        Assert.That(transfer.Sent, Is.EqualTo(sent));
        Assert.That(transfer.Received, Is.EqualTo(received));
        Assert.That(transfer.MaxPeers, Is.EqualTo(peers));
    }

    [TestCase("n2c1h1")]
    [TestCase("n1c1h2")]
    public void AnElementwiseLayerInTheSameLayoutMovesNothing(string config)
    {
        var layers = LayerNode.Of([new LayerSpec("conv2d", 2, 2, 3, 1, 1), new LayerSpec("relu"), new LayerSpec("maxpool2d", 2)], [2, 8, 6]);
        Assert.That(Into(layers, 1, config, config, 2), Is.SameAs(Transfer.None));
        Assert.That(Into(layers, 2, config, config, 2), Is.SameAs(Transfer.None), "a 2x2 pool's rows are its own when stride = kernel");
    }

    // Batch 2, images 2 x 8 x 5; conv 3x3 pad 1 split in 2 row blocks of 4: rank 0 reads rows 0-4, rank 1 rows 3-7,
    // one halo row each: 2 samples x 2 channels x 1 row x 5 columns = 20 values (80 B).
    [Test]
    public void AHeightSplitConvExchangesOneHaloRowEachWay()
    {
        var layers = LayerNode.Of([new LayerSpec("relu"), new LayerSpec("conv2d", 2, 2, 3, 1, 1)], [2, 8, 5]);
        var transfer = Into(layers, 1, "n1c1h2", "n1c1h2", 2);
        Assert.That((transfer.Forward, transfer.Backward), Is.EqualTo(("halo exchange (point-to-point)", "halo exchange, added")));
        Assert.That(transfer.Received, Is.EqualTo(new long[] { 80, 80 }));
        Assert.That(transfer.Sent, Is.EqualTo(new long[] { 80, 80 }));
    }

    // n1c2h2 on 4 ranks: rank 0 holds channel 0, rows 0-3 (2 x 1 x 4 x 5 = 40 values) and needs both channels, rows
    // 0-4 (100): 10 from rank 1 (channel 0, row 4), 40 from rank 2 (channel 1, rows 0-3), 10 from rank 3 (channel 1, row 4);
    // every piece keeps its holder's samples and channels and rank 0 keeps its own block, so the engine moves it
    // point to point as a halo exchange (the pieces from ranks 2 and 3 are their channel's rows, an Allgather's part).
    [Test]
    public void ChannelAndHeightSplitConvGathersChannelsAndHalo()
    {
        var layers = LayerNode.Of([new LayerSpec("relu"), new LayerSpec("conv2d", 2, 2, 3, 1, 1)], [2, 8, 5]);
        var transfer = Into(layers, 1, "n1c2h2", "n1c2h2", 2);
        Assert.That(transfer.Forward, Is.EqualTo("halo exchange (point-to-point)"));
        Assert.That(transfer.Received, Is.EqualTo(new long[] { 240, 240, 240, 240 }));
        Assert.That(transfer.MaxPeers, Is.EqualTo(3));
    }

    [Test]
    public void TheLossGathersEveryClassScoreOfASample()
    {
        Assert.That(Redistribution.ToLoss(Linears[1], LayerConfig.Parse("n2c1h1"), 4), Is.SameAs(Transfer.None));
        var gather = Redistribution.ToLoss(Linears[1], LayerConfig.Parse("n1c2h1"), 4);
        Assert.That(gather.Forward, Is.EqualTo("Alltoall(v)"));
        Assert.That(gather.Received, Is.EqualTo(new long[] { 16, 16 })); // the loss's 2 samples x the other rank's 2 scores
    }

    // alpha 1 us, beta 1 ns/B. The 4-rank Alltoallv above: 3 peers, 96 B per rank, 384 B in all.
    [TestCase(LinkTopology.PerRank, 3e-6 + 96e-9)]
    [TestCase(LinkTopology.Shared, 3e-6 + 384e-9)]
    public void ATransferCostsAlphaPerPeerAndBetaPerByteOfTheBusiestRankOrTheSharedLink(LinkTopology topology, double seconds)
    {
        var network = new LayerwiseNetwork("test", new AlphaBeta(1e-6, 1e-9), new AlphaBeta(1e-6, 1e-9), topology);
        Assert.That(network.Seconds(Into(Linears, 1, "n2c2h1", "n1c4h1", 4)), Is.EqualTo(seconds).Within(1e-15));
    }

    // 1000 B of parameters. n2c2: two shards of 500 B, each on 2 replicas: ring 2 alpha + 2 (1/2) 500 beta, the two
    // groups at once on links of their own; on one shared link both groups' 2 (g-1) 500 B add up. n4: 4 replicas.
    [TestCase("n2c2h1", LinkTopology.PerRank, 2e-6 + 500e-9)]
    [TestCase("n2c2h1", LinkTopology.Shared, 2e-6 + 2000e-9)]
    [TestCase("n4c1h1", LinkTopology.PerRank, 6e-6 + 1500e-9)]
    [TestCase("n4c1h1", LinkTopology.Shared, 6e-6 + 6000e-9)]
    [TestCase("n1c2h2", LinkTopology.PerRank, 2e-6 + 500e-9)]
    [TestCase("n1c4h1", LinkTopology.PerRank, 0.0)]
    public void SyncIsTheRingAllreduceOfEachShardOverItsReplicas(string config, LinkTopology topology, double seconds)
    {
        var network = new LayerwiseNetwork("test", new AlphaBeta(1e-6, 1e-9), new AlphaBeta(1e-6, 1e-9), topology);
        Assert.That(network.Sync(1000, LayerConfig.Parse(config)), Is.EqualTo(seconds).Within(1e-15));
    }

    [Test]
    public void TheEmulatedNetworkIsItsRatePlusTheTcpLatencyOnOneLink()
    {
        var network = LayerwiseNetwork.Emulated(EmulatedNetwork.Parse("1gbit,50us"));
        Assert.That(network.PointToPoint.Bandwidth, Is.EqualTo(125e6).Within(1e-3));
        Assert.That(network.PointToPoint.Alpha, Is.EqualTo(LayerwiseNetwork.TcpLoopbackAlpha + 50e-6).Within(1e-15));
        Assert.That(network.Topology, Is.EqualTo(LinkTopology.Shared));
        Assert.That(() => LayerwiseNetwork.Emulated(EmulatedNetwork.Parse("none")), Throws.TypeOf<InputException>().With.Message.Contains("rate"));
    }

    /// <summary>The shared-memory figures are the fit of the committed `bench mpi` report (C# medians, MPICH, 2 ranks).</summary>
    [Test]
    public void SharedMemoryFiguresAreTheFitOfTheCommittedMpiBenchmark()
    {
        var report = File.ReadAllText(Path.Combine(RepoPaths.Root, "bench", "results", "mpi.md"));
        var pingPong = AlphaBeta.FitPointToPoint(Medians(report, "mpich, pingpong")).Model;
        var allreduce = AlphaBeta.FitRingAllreduce(Medians(report, "mpich, allreduce")).Model;
        TestContext.Out.WriteLine($"ping-pong {pingPong.Alpha * 1e6} us {pingPong.Bandwidth / 1e9} GB/s; allreduce {allreduce.Alpha * 1e6} us {allreduce.Bandwidth / 1e9} GB/s");
        Assert.That(LayerwiseNetwork.SharedMemoryPointToPointAlpha, Is.EqualTo(pingPong.Alpha).Within(1).Percent);
        Assert.That(LayerwiseNetwork.SharedMemoryPointToPointBandwidth, Is.EqualTo(pingPong.Bandwidth).Within(1).Percent);
        Assert.That(LayerwiseNetwork.SharedMemoryAllreduceAlpha, Is.EqualTo(allreduce.Alpha).Within(1).Percent);
        Assert.That(LayerwiseNetwork.SharedMemoryAllreduceBandwidth, Is.EqualTo(allreduce.Bandwidth).Within(1).Percent);
    }

    /// <summary>The (size, C# median) rows of one section of bench/results/mpi.md, 2 ranks.</summary>
    private static List<TimingSample> Medians(string report, string section)
    {
        var text = report.Split("## " + section)[1].Split("\n## ")[0];
        var units = new Dictionary<string, long> { ["B"] = 1, ["KiB"] = 1 << 10, ["MiB"] = 1 << 20 };
        return [.. Regex.Matches(text, @"^\| (\d+) (B|KiB|MiB) \| [\d.]+ \| ([\d.]+) \|", RegexOptions.Multiline).Select(m => new TimingSample(
            2, long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * units[m.Groups[2].Value],
            double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) * 1e-6))];
    }
}
