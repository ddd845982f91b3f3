namespace MpiPipeline.Layerwise;

/// <summary>What a transition between two layouts amounts to, named by its traffic (see <see cref="TransferCosts"/>).</summary>
internal enum TransferKind
{
    /// <summary>Every rank already holds what it needs.</summary>
    None,

    /// <summary>Forward: ranks send their whole blocks to the peers that need them (e.g. a channel split meeting a layer
    /// that needs every channel). Backward: the Reduce-scatter of the partial sums of the replicated input's gradient.</summary>
    Allgather,

    /// <summary>Forward: ranks send rows of their blocks (same samples and channels) to height neighbours that need more
    /// rows than they hold but not all of them (a height-split conv's halo); backward: the halo rows' gradients go back
    /// and are added.</summary>
    Halo,

    /// <summary>Anything else: parts of blocks to other ranks (sample split meeting channel split and back), the same
    /// pattern both ways, the backward adding where pieces overlap.</summary>
    Alltoall,
}

/// <summary>
/// The bytes one transition moves: per rank, the most any rank sends forward (activations) and backward (their
/// gradients); 4-byte floats.
/// </summary>
internal readonly record struct TransferCost(TransferKind Kind, long ForwardBytesPerRank, long BackwardBytesPerRank)
{
    /// <summary>The MPI operation that the pattern is, forward and backward.</summary>
    public (string Forward, string Backward) Collectives => Kind switch
    {
        TransferKind.None => ("none", "none"),
        TransferKind.Allgather => ("Allgather", "Reduce-scatter"),
        TransferKind.Halo => ("halo exchange (point-to-point)", "halo exchange, added"),
        _ => ("Alltoall(v)", "Alltoall(v), added"),
    };
}

/// <summary>
/// The redistributions of the layer-wise engine, as pure functions of the layouts: between the output blocks of layer
/// i - 1 (<c>held</c>, one per rank) and the input blocks layer i needs (<c>needed</c>), rank p sends rank q the
/// intersection held[p] ∩ needed[q] forward, and rank q sends the gradient of the same box back, where it is added.
/// The engine moves a halo exchange by point-to-point messages and every other transition with one MPI_Alltoallv
/// whose counts are these intersections, so the named pattern (<see cref="TransferKind"/>) and the bytes here are what
/// it sends; the cost model reads the same numbers.
/// Gradient synchronization: a layer's parameter shard is replicated over Sample x Height ranks and summed once per
/// step with an Allreduce among them (<see cref="SyncBytesPerRank"/>, a ring's bytes).
/// </summary>
internal static class TransferCosts
{
    public const int BytesPerElement = sizeof(float);

    /// <summary>
    /// The traffic from held blocks to needed blocks (one each per rank) of an activation with <paramref name="columns"/>
    /// columns: per rank the bytes it sends and receives forward, its peers, and the pattern. The engine
    /// (<see cref="BlockTransfer"/>) and the cost model (<see cref="Redistribution"/>) both read this one function.
    /// </summary>
    public static Transfer Traffic(IReadOnlyList<ActivationBlock> held, IReadOnlyList<ActivationBlock> needed, int columns)
    {
        var ranks = held.Count;
        var rows = held.Max(block => block.R1);
        var sent = new long[ranks];
        var received = new long[ranks];
        var sendPeers = new int[ranks];
        var receivePeers = new int[ranks];
        bool any = false, wholeBlocks = true, rowSlices = true;
        for (var p = 0; p < ranks; p++)
        {
            for (var q = 0; q < ranks; q++)
            {
                var piece = held[p].Intersect(needed[q]);
                if (p == q || piece.IsEmpty)
                {
                    continue;
                }

                any = true;
                var bytes = piece.Elements(columns) * BytesPerElement;
                sent[p] += bytes;
                received[q] += bytes;
                sendPeers[p]++;
                receivePeers[q]++;
                wholeBlocks &= piece == held[p];
                rowSlices &= piece.S0 == held[p].S0 && piece.S1 == held[p].S1 && piece.C0 == held[p].C0 && piece.C1 == held[p].C1
                    && needed[q].Contains(held[q]) && needed[q].Rows < rows;
            }
        }

        if (!any)
        {
            return Transfer.None;
        }

        var kind = rowSlices ? TransferKind.Halo : wholeBlocks ? TransferKind.Allgather : TransferKind.Alltoall;
        var local = new long[ranks];
        for (var r = 0; r < ranks; r++)
        {
            var heldBytes = held[r].Elements(columns) * BytesPerElement;
            local[r] = (needed[r].Elements(columns) * BytesPerElement) + sent[r] + (2 * heldBytes) + received[r];
        }

        return new Transfer(kind, sent, received, [.. sendPeers.Zip(receivePeers, Math.Max)])
        {
            Local = local, Held = [.. held], Needed = [.. needed], Columns = columns,
        };
    }

    /// <summary>The busiest rank's bytes of <see cref="Traffic"/>: forward what it sends, backward what it received forward.</summary>
    public static TransferCost Cost(IReadOnlyList<ActivationBlock> held, IReadOnlyList<ActivationBlock> needed, int columns)
    {
        var traffic = Traffic(held, needed, columns);
        return traffic.Kind == TransferKind.None
            ? new TransferCost(TransferKind.None, 0, 0)
            : new TransferCost(traffic.Kind, traffic.Sent.Max(), traffic.Received.Max());
    }

    /// <summary>The transition into <paramref name="consumer"/> from <paramref name="producer"/>'s output, for a batch.</summary>
    public static TransferCost Between(PlannedLayer producer, PlannedLayer consumer, int batch, int ranks) =>
        Cost(Blocks(ranks, r => LayerGeometry.OutputBlock(producer, batch, r)), Blocks(ranks, r => LayerGeometry.InputBlock(consumer, batch, r)),
            producer.Output.Columns);

    /// <summary>The transition from the last layer's logits to the loss's layout (1/R of the samples per rank, every class).</summary>
    public static TransferCost ToLoss(PlannedLayer last, int batch, int ranks) =>
        Cost(Blocks(ranks, r => LayerGeometry.OutputBlock(last, batch, r)),
            Blocks(ranks, r => LayerGeometry.LossBlock(batch, last.Output.Channels, ranks, r)), last.Output.Columns);

    /// <summary>
    /// Bytes each rank sends to sum a parameter shard of <paramref name="shardParameters"/> values over its
    /// Sample x Height replicas: a ring Allreduce's 2 (k - 1) / k of the shard, 0 when it has no replica.
    /// </summary>
    public static long SyncBytesPerRank(long shardParameters, LayerConfig config)
    {
        var k = config.Sample * config.Height;
        return 2L * (k - 1) * shardParameters * BytesPerElement / k;
    }

    private static ActivationBlock[] Blocks(int ranks, Func<int, ActivationBlock> block) => [.. Enumerable.Range(0, ranks).Select(block)];
}
