namespace MpiPipeline.Layerwise;

/// <summary>
/// The traffic of one redistribution of an activation, per rank: bytes sent and received forward (backward the
/// gradient takes the same pieces the other way: a rank sends back what it received), the peers it exchanges with (the
/// larger of its send and receive fan) and the pattern the engine moves it by (<see cref="TransferKind"/>).
/// </summary>
internal sealed record Transfer(TransferKind Kind, long[] Sent, long[] Received, int[] Peers)
{
    public static readonly Transfer None = new(TransferKind.None, [], [], []);

    public string Forward => new TransferCost(Kind, 0, 0).Collectives.Forward;

    public string Backward => new TransferCost(Kind, 0, 0).Collectives.Backward;

    /// <summary>Bytes over all ranks (what one shared link carries).</summary>
    public long TotalBytes => Sent.Sum();

    /// <summary>The busiest rank's bytes, the larger of what it sends and receives (a full-duplex link per rank).</summary>
    public long MaxRankBytes => Sent.Length == 0 ? 0 : Sent.Zip(Received, Math.Max).Max();

    public int MaxPeers => Peers.Length == 0 ? 0 : Peers.Max();

    /// <summary>
    /// Per rank, the bytes the engine's own copies touch around the MPI call, forward and backward together
    /// (<see cref="BlockTransfer"/>): forward it writes its whole needed block (its own piece and the unpacked ones) and
    /// packs what it sends; backward it clears its held block's gradient, adds its own and the received pieces into it
    /// (read and write), and packs what it sends back (what it received forward). Empty for <see cref="None"/>.
    /// </summary>
    public long[] Local { get; init; } = [];

    /// <summary>The busiest rank's <see cref="Local"/> bytes.</summary>
    public long MaxLocalBytes => Local.Length == 0 ? 0 : Local.Max();

    /// <summary>The layouts it moves between (one block per rank), and the activation's columns: what the engine's
    /// <see cref="BlockTransfer"/> is built from, so its copies can be timed as they run.</summary>
    public ActivationBlock[] Held { get; init; } = [];

    public ActivationBlock[] Needed { get; init; } = [];

    public int Columns { get; init; }

    /// <summary>The layouts in a cache key's words.</summary>
    public string Key => $"{string.Join(' ', Held.Select(Brief))} to {string.Join(' ', Needed.Select(Brief))} x {Columns}";

    private static string Brief(ActivationBlock b) => $"{b.S0}:{b.S1},{b.C0}:{b.C1},{b.R0}:{b.R1}";
}

/// <summary>
/// The cost model's view of the engine's redistributions: a search node is a <see cref="LayerNode"/> with a candidate
/// <see cref="LayerConfig"/>, and this maps it onto the blocks the engine itself uses (<see cref="LayerGeometry"/>)
/// and prices them with the engine's own traffic function (<see cref="TransferCosts.Traffic"/>), so that a plan is
/// priced on exactly the bytes `train --algo layerwise` sends. Pure: no MPI, no libtorch.
/// </summary>
internal static class Redistribution
{
    /// <summary>From <paramref name="producer"/>'s output layout to the input <paramref name="consumer"/> needs under <paramref name="config"/>.</summary>
    public static Transfer Between(LayerConfig producer, LayerNode consumer, LayerConfig config, int batch)
    {
        var layer = Planned(consumer, config);
        return TransferCosts.Traffic(
            Blocks(config.Ranks, r => LayerGeometry.Block(layer.Input, producer, batch, r)),
            Blocks(config.Ranks, r => LayerGeometry.InputBlock(layer, batch, r)),
            layer.Input.Columns);
    }

    /// <summary>
    /// The loss's layout, as the engine computes it: 1/R of the samples per rank with every class score
    /// (<see cref="LayerGeometry.LossBlock"/>), from the last layer's output layout.
    /// </summary>
    public static Transfer ToLoss(LayerNode last, LayerConfig config, int batch)
    {
        var layer = Planned(last, config);
        return TransferCosts.Traffic(
            Blocks(config.Ranks, r => LayerGeometry.OutputBlock(layer, batch, r)),
            Blocks(config.Ranks, r => LayerGeometry.LossBlock(batch, layer.Output.Channels, config.Ranks, r)),
            layer.Output.Columns);
    }

    private static PlannedLayer Planned(LayerNode node, LayerConfig config) =>
        new(node.Index, node.Spec, ActivationShape.Of(node.InputShape), ActivationShape.Of(node.OutputShape), config);

    private static ActivationBlock[] Blocks(int ranks, Func<int, ActivationBlock> block) => [.. Enumerable.Range(0, ranks).Select(block)];
}
