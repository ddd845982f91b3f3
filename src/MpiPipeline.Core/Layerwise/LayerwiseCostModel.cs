namespace MpiPipeline.Layerwise;

/// <summary>One layer of a priced plan: its configuration and its three costs (seconds per training step).</summary>
/// <param name="Transfer">The redistribution into this layer's input (forward and backward); for the last layer, also the one to the loss.</param>
internal sealed record LayerCost(LayerNode Layer, LayerConfig Config, double Compute, Transfer In, double TransferSeconds, double Sync);

/// <summary>A plan's predicted step: t = sum t_compute + sum t_transfer + sum t_sync, and the per-layer parts.</summary>
internal sealed record PlanCost(IReadOnlyList<LayerCost> Layers, Transfer ToLoss, double ToLossSeconds)
{
    public double Compute => Layers.Sum(l => l.Compute);

    public double Transfer => Layers.Sum(l => l.TransferSeconds) + ToLossSeconds;

    public double Sync => Layers.Sum(l => l.Sync);

    public double Step => Compute + Transfer + Sync;

    public IReadOnlyList<LayerConfig> Configs => [.. Layers.Select(l => l.Config)];
}

/// <summary>
/// OptCNN's cost model for one model, global batch and rank count:
/// t(plan) = sum over layers t_compute(layer, config) + sum over edges t_transfer(config_i, config_j) + sum over layers t_sync(layer, config).
/// <list type="bullet">
/// <item>t_compute: the shard's forward + backward and, for its parameters, the zeroing of their gradients and the
/// optimizer's update, from <see cref="ILayerTimes"/> (measured on this machine in whole-model chains, <see cref="MeasurementChains"/>, and cached).</item>
/// <item>t_transfer: the activation forward and its gradient backward, the same bytes each way, exactly the bytes the
/// engine sends (<see cref="Redistribution"/> reads the engine's blocks and traffic function), priced by <see cref="LayerwiseNetwork.Seconds"/>,
/// plus the engine's copies around the MPI calls (pack, unpack, the held gradient's clear and adds), timed on this machine
/// by running them (<see cref="ILayerTimes.TransferCopySeconds"/>); the input is read by each rank from
/// the data set (free), and the last layer's output goes to the loss's layout (1/R of the samples per rank, every class score).</item>
/// <item>t_sync: the Allreduce of the gradients of parameters replicated over Sample x Height ranks (<see cref="LayerwiseNetwork.Sync"/>).</item>
/// </list>
/// Not in the model: the loop's own overhead (the data, the guard's norm), and overlap of communication with compute
/// (none: the engine's transfers block).
/// </summary>
internal sealed class LayerwiseCostModel
{
    private readonly ILayerTimes times;

    public LayerwiseCostModel(IReadOnlyList<LayerNode> layers, int batch, int ranks, ILayerTimes times, LayerwiseNetwork network)
    {
        if (ranks < 1)
        {
            throw new InputException($"--ranks {ranks}: a plan needs at least 1 rank");
        }

        if (batch < 1)
        {
            throw new InputException($"--batch {batch}: the global batch must be at least 1");
        }

        Layers = layers;
        Batch = batch;
        Ranks = ranks;
        this.times = times;
        Network = network;
        Configs = [.. layers.Select(layer => LayerConfigs.For(layer, batch, ranks))];
        for (var i = 0; i < layers.Count; i++)
        {
            if (Configs[i].Count == 0)
            {
                throw new InputException(
                    $"layer {i} ({layers[i].Spec}) has no configuration over {ranks} ranks with a global batch of {batch}: its sample degree must divide " +
                    $"the batch{(layers[i].Kind.SplitsChannels ? $" or its channel degree the {ChannelsOf(layers[i])}" : "")}; try --batch {(batch / ranks + 1) * ranks}");
            }
        }

        // Every shard the search can price, measured up front in whole-model chains: a layer's time depends on the
        // layers stepped around it.
        times.Prepare(MeasurementChains(Configs, ranks).Select(chain => (IReadOnlyList<ComputeShard>)[.. chain.Select((config, i) => ComputeShard.Of(layers[i], config, batch))]));
    }

    /// <summary>
    /// The chains the layer times are measured in: one per configuration any layer takes (in the order they first
    /// appear), every layer in that configuration where it has it, else data parallel, else its first; so each (layer,
    /// configuration) is in a chain, and a layer's neighbours in its chain are about those of a plan that uses it.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<LayerConfig>> MeasurementChains(IReadOnlyList<IReadOnlyList<LayerConfig>> configs, int ranks) =>
    [
        .. configs.SelectMany(layer => layer).Distinct().Select(config => (IReadOnlyList<LayerConfig>)
        [
            .. configs.Select(layer => layer.Contains(config) ? config : layer.Contains(LayerConfig.DataParallel(ranks)) ? LayerConfig.DataParallel(ranks) : layer[0]),
        ]),
    ];

    public IReadOnlyList<LayerNode> Layers { get; }

    private static string ChannelsOf(LayerNode layer) =>
        layer.Kind.Name == "flatten" ? $"{layer.InputShape[0]} channels of its input image" : $"{layer.OutputShape[0]} output channels";

    public int Batch { get; }

    public int Ranks { get; }

    public LayerwiseNetwork Network { get; }

    /// <summary>The valid configurations of each layer (<see cref="LayerConfigs.For"/>).</summary>
    public IReadOnlyList<IReadOnlyList<LayerConfig>> Configs { get; }

    public double Compute(int layer, LayerConfig config)
    {
        var shard = ComputeShard.Of(Layers[layer], config, Batch);
        return times.Seconds(shard.Layer, shard.InputShape, shard.Batch, shard.InputGradient) + (shard.CropBytes * times.CopySecondsPerByte);
    }

    public double Sync(int layer, LayerConfig config) => Network.Sync(Layers[layer].Parameters * TransferCosts.BytesPerElement, config);

    /// <summary>Layer <paramref name="layer"/>'s input from layer - 1 laid out as <paramref name="from"/>.</summary>
    public Transfer Edge(int layer, LayerConfig from, LayerConfig to) => Redistribution.Between(from, Layers[layer], to, Batch);

    /// <summary>Forward and backward: the same bytes each way on the network, and the engine's block copies around
    /// the MPI calls as they run on this machine (<see cref="ILayerTimes.TransferCopySeconds"/>).</summary>
    public double TransferSeconds(Transfer transfer) => (2 * Network.Seconds(transfer)) + times.TransferCopySeconds(transfer);

    public double EdgeSeconds(int layer, LayerConfig from, LayerConfig to) => TransferSeconds(Edge(layer, from, to));

    public double LossSeconds(LayerConfig last) => TransferSeconds(Redistribution.ToLoss(Layers[^1], last, Batch));

    public PlanCost Evaluate(IReadOnlyList<LayerConfig> plan)
    {
        if (plan.Count != Layers.Count)
        {
            throw new InputException($"a plan for {plan.Count} layers does not fit a model of {Layers.Count}");
        }

        var layers = new List<LayerCost>(plan.Count);
        for (var i = 0; i < plan.Count; i++)
        {
            if (!Configs[i].Contains(plan[i]))
            {
                throw new InputException(
                    $"layer {i} ({Layers[i].Spec}): {plan[i]} is not one of its configurations over {Ranks} ranks: {string.Join(", ", Configs[i])}");
            }

            var edge = i == 0 ? Transfer.None : Edge(i, plan[i - 1], plan[i]);
            layers.Add(new LayerCost(Layers[i], plan[i], Compute(i, plan[i]), edge, TransferSeconds(edge), Sync(i, plan[i])));
        }

        var loss = Redistribution.ToLoss(Layers[^1], plan[^1], Batch);
        return new PlanCost(layers, loss, TransferSeconds(loss));
    }

    /// <summary>Every layer sample-split R ways (PSGD).</summary>
    public IReadOnlyList<LayerConfig> DataParallel() => [.. Configs.Select(configs => configs.Contains(LayerConfig.DataParallel(Ranks)) ? LayerConfig.DataParallel(Ranks) : configs[0])];

    /// <summary>
    /// Every layer channel-split R ways where its kind and its channel count allow; the others (a residual block, a
    /// classifier whose class count R does not divide) data parallel, or their first configuration.
    /// </summary>
    public IReadOnlyList<LayerConfig> ModelParallel() =>
    [
        .. Configs.Select(configs => configs.Contains(LayerConfig.ModelParallel(Ranks)) ? LayerConfig.ModelParallel(Ranks)
            : configs.Contains(LayerConfig.DataParallel(Ranks)) ? LayerConfig.DataParallel(Ranks) : configs[0]),
    ];

    /// <summary>The layer chain as a cost graph: node costs compute + sync, edge costs the transfers (the loss's folded into the last node).</summary>
    public CostGraph Graph()
    {
        var graph = new CostGraph();
        for (var i = 0; i < Layers.Count; i++)
        {
            var configs = Configs[i];
            var last = i == Layers.Count - 1;
            graph.AddNode([.. configs.Select(c => Compute(i, c) + Sync(i, c) + (last ? LossSeconds(c) : 0))]);
            if (i > 0)
            {
                var from = Configs[i - 1];
                var cost = new double[from.Count, configs.Count];
                for (var a = 0; a < from.Count; a++)
                {
                    for (var b = 0; b < configs.Count; b++)
                    {
                        cost[a, b] = EdgeSeconds(i, from[a], configs[b]);
                    }
                }

                graph.AddEdge(i - 1, i, cost);
            }
        }

        return graph;
    }

    /// <summary>The searched plan: OptCNN's node and edge elimination on <see cref="Graph"/>, exact on a chain.</summary>
    public IReadOnlyList<LayerConfig> Search()
    {
        var choice = GraphSearch.Optimize(Graph());
        return [.. choice.Select((c, i) => Configs[i][c])];
    }
}
