namespace MpiPipeline.Layerwise;

/// <summary>
/// A block of an activation (batch, channels or features, rows), half-open ranges; columns are never split, so a
/// block's size in values is its volume times the row length.
/// </summary>
internal readonly record struct Block(long Sample0, long Sample1, long Channel0, long Channel1, long Row0, long Row1)
{
    public long Volume => Math.Max(0, Sample1 - Sample0) * Math.Max(0, Channel1 - Channel0) * Math.Max(0, Row1 - Row0);

    public Block Intersect(Block other) => new(
        Math.Max(Sample0, other.Sample0), Math.Min(Sample1, other.Sample1),
        Math.Max(Channel0, other.Channel0), Math.Min(Channel1, other.Channel1),
        Math.Max(Row0, other.Row0), Math.Min(Row1, other.Row1));
}

/// <summary>An activation of the whole batch: batch x channels (features) x rows x columns (flat data: rows = columns = 1).</summary>
internal readonly record struct Activation(long Batch, long Channels, long Rows, long Columns)
{
    public const int BytesPerValue = sizeof(float);

    public static Activation Of(int batch, int[] sampleShape) => sampleShape.Length == 3
        ? new(batch, sampleShape[0], sampleShape[1], sampleShape[2])
        : new(batch, sampleShape.Aggregate(1L, (p, d) => p * d), 1, 1);

    /// <summary>
    /// Rank <paramref name="rank"/>'s block under <paramref name="config"/>: the contract's rank order
    /// r = (s * Channel + c) * Height + h, each dimension cut into equal contiguous blocks.
    /// </summary>
    public Block BlockOf(LayerConfig config, int rank)
    {
        var (s, c, h) = Coordinates(config, rank);
        return new Block(
            s * Batch / config.Sample, (s + 1) * Batch / config.Sample,
            c * Channels / config.Channel, (c + 1) * Channels / config.Channel,
            h * Rows / config.Height, (h + 1) * Rows / config.Height);
    }

    /// <summary>(s, c, h) of a rank: r = (s * Channel + c) * Height + h.</summary>
    public static (int Sample, int Channel, int Height) Coordinates(LayerConfig config, int rank) =>
        (rank / (config.Channel * config.Height), rank / config.Height % config.Channel, rank % config.Height);
}

/// <summary>
/// The bytes one redistribution of an activation moves (forward; the backward pass moves its gradient the same way
/// reversed, the same bytes) and the collectives that move it. Per rank: bytes sent and received, and the peers it
/// exchanges with (the larger of its send and receive fan).
/// </summary>
internal sealed record Transfer(string Forward, string Backward, long[] Sent, long[] Received, int[] Peers)
{
    public static readonly Transfer None = new("none", "none", [], [], []);

    /// <summary>Bytes over all ranks (what one shared link carries).</summary>
    public long TotalBytes => Sent.Sum();

    /// <summary>The busiest rank's bytes, the larger of what it sends and receives (a full-duplex link per rank).</summary>
    public long MaxRankBytes => Sent.Length == 0 ? 0 : Sent.Zip(Received, Math.Max).Max();

    public int MaxPeers => Peers.Length == 0 ? 0 : Peers.Max();
}

/// <summary>
/// Pure functions: which block of its input each rank of a layer needs under the layer's configuration, and what
/// moving the producer's output blocks there costs in bytes. No MPI and no libtorch: tested against literal tables.
/// </summary>
internal static class Redistribution
{
    /// <summary>
    /// The input block rank <paramref name="rank"/> of <paramref name="consumer"/> needs under <paramref name="config"/>
    /// (the contract of <see cref="LayerConfig"/>; <see cref="InputNeed"/> per kind).
    /// </summary>
    public static Block Need(LayerNode consumer, LayerConfig config, int batch, int rank)
    {
        var input = Activation.Of(batch, consumer.InputShape);
        var output = Activation.Of(batch, consumer.OutputShape);
        var (s, c, h) = Activation.Coordinates(config, rank);
        var (sample0, sample1) = (s * input.Batch / config.Sample, (s + 1) * input.Batch / config.Sample);
        var (out0, out1) = (h * output.Rows / config.Height, (h + 1) * output.Rows / config.Height);
        var (row0, row1) = InputRows(consumer, out0, out1, input.Rows);
        return consumer.Kind.Need switch
        {
            InputNeed.AllChannels => new Block(sample0, sample1, 0, input.Channels, row0, row1),
            InputNeed.SameBlock => new Block(sample0, sample1, c * input.Channels / config.Channel, (c + 1) * input.Channels / config.Channel, row0, row1),
            _ => new Block(sample0, sample1, 0, input.Channels, 0, input.Rows),
        };
    }

    /// <summary>
    /// The input rows a layer reads for its output rows [out0, out1): a conv's or pool's window (kernel k, stride s,
    /// padding p: from out0 s - p to (out1 - 1) s - p + k, clipped to the image), every row for flatten, the same rows
    /// for the rest.
    /// </summary>
    public static (long Start, long End) InputRows(LayerNode consumer, long out0, long out1, long inputRows)
    {
        var args = consumer.Spec.Args;
        (long K, long S, long P)? window = consumer.Spec.Kind switch
        {
            "conv2d" => (args[2], args.Length > 3 ? args[3] : 1, args.Length > 4 ? args[4] : 0),
            "maxpool2d" or "avgpool2d" => (args[0], args.Length > 1 ? args[1] : args[0], args.Length > 2 ? args[2] : 0),
            _ => null,
        };
        if (consumer.Spec.Kind == "flatten" || consumer.InputShape.Length != 3)
        {
            return (0, inputRows);
        }

        if (window is not { } w)
        {
            return (out0, out1);
        }

        return (Math.Max(0, out0 * w.S - w.P), Math.Min(inputRows, (out1 - 1) * w.S - w.P + w.K));
    }

    /// <summary>
    /// Moving the output of a layer laid out as <paramref name="producer"/> (shape <paramref name="activation"/>) to
    /// where each rank's <paramref name="need"/> is: every rank receives what it needs and does not hold. Output
    /// blocks partition the tensor (one holder per value), so who sends what is determined.
    /// </summary>
    public static Transfer Move(Activation activation, LayerConfig producer, int ranks, Func<int, Block> need, Func<(string Forward, string Backward)> name)
    {
        var sent = new long[ranks];
        var received = new long[ranks];
        var sendPeers = new int[ranks];
        var receivePeers = new int[ranks];
        var held = Enumerable.Range(0, ranks).Select(q => activation.BlockOf(producer, q)).ToArray();
        for (var r = 0; r < ranks; r++)
        {
            var wanted = need(r);
            for (var q = 0; q < ranks; q++)
            {
                if (q == r)
                {
                    continue;
                }

                var bytes = wanted.Intersect(held[q]).Volume * activation.Columns * Activation.BytesPerValue;
                if (bytes > 0)
                {
                    sent[q] += bytes;
                    received[r] += bytes;
                    sendPeers[q]++;
                    receivePeers[r]++;
                }
            }
        }

        if (sent.All(b => b == 0))
        {
            return Transfer.None;
        }

        var (forward, backward) = name();
        return new Transfer(forward, backward, sent, received, [.. sendPeers.Zip(receivePeers, Math.Max)]);
    }

    /// <summary>From <paramref name="producer"/>'s output layout to the input <paramref name="consumer"/> needs under <paramref name="config"/>.</summary>
    public static Transfer Between(LayerConfig producer, LayerNode consumer, LayerConfig config, int batch) =>
        Move(Activation.Of(batch, consumer.InputShape), producer, config.Ranks, r => Need(consumer, config, batch, r),
            () => Collectives(producer, consumer.Kind.Need, config, consumer.Spec.Kind == "conv2d" && config.Height > 1));

    /// <summary>
    /// The loss needs every class score of a sample on one rank: from the last layer's layout to whole features on
    /// the same sample blocks (each rank of a channel group then holds its group's scores; they compute the same loss).
    /// </summary>
    public static Transfer ToLoss(LayerNode last, LayerConfig config, int batch)
    {
        var activation = Activation.Of(batch, last.OutputShape);
        return Move(activation, config, config.Ranks, r =>
            {
                var block = activation.BlockOf(config, r);
                return block with { Channel0 = 0, Channel1 = activation.Channels, Row0 = 0, Row1 = activation.Rows };
            },
            () => Collectives(config, InputNeed.AllChannels, config with { Channel = 1 }, halo: false));
    }

    /// <summary>
    /// The collectives of a transition, forward and backward. Same sample and height splits with a channel-split
    /// producer and a consumer that needs every channel: an Allgather among the ranks that share a sample and row
    /// block (backward: a Reduce-scatter, each of them having a partial gradient of the whole input); rows beyond a
    /// rank's own: a halo exchange point to point (both ways); any other change of layout: an Alltoall(v) (backward:
    /// the reverse Alltoallv, the receiver adding the partial gradients of a replicated input).
    /// </summary>
    internal static (string Forward, string Backward) Collectives(LayerConfig producer, InputNeed need, LayerConfig consumer, bool halo)
    {
        var sameBlocks = producer.Sample == consumer.Sample && producer.Height == consumer.Height;
        if (need == InputNeed.AllChannels && sameBlocks)
        {
            return (producer.Channel > 1, halo) switch
            {
                (true, true) => ("Allgather + halo P2P", "Reduce-scatter + halo P2P"),
                (true, false) => ("Allgather", "Reduce-scatter"),
                _ => ("halo P2P", "halo P2P"),
            };
        }

        return need == InputNeed.SameBlock && producer == consumer ? ("halo P2P", "halo P2P") : ("Alltoallv", "Alltoallv");
    }
}
