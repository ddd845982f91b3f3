using System.Diagnostics;
using System.Globalization;
using System.Text;
using MpiPipeline.Algorithms;
using MpiPipeline.Data;
using MpiPipeline.Exchange;
using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Layerwise;

/// <summary>
/// <c>--algo layerwise</c>: layer-wise parallelism (OptCNN, Jia et al. 2018). Every layer uses every rank, split by its
/// own <see cref="LayerConfig"/> of the plan (<c>--plan</c>); rank r holds its block of each layer's output and its shard
/// of the layer's parameters (a channel-split linear or conv2d holds 1/c of its output channels' weights and biases).
/// Per mini-batch of B samples:
/// <code>
/// x_0 = the input block layer 0 needs, cut from the batch (every rank loads the data itself)
/// for each layer i: x_i = the input block it needs, redistributed from layer i-1's output blocks (TransferCosts)
///                   y_i = layer_i shard (x_i), its own output block (a height-split conv drops its halo rows)
/// logits redistributed to 1/R of the samples per rank; L = mean cross-entropy over the B samples
/// backward in reverse: each gradient block goes back along the same transfer and is added where pieces overlap
/// g_i = sum over the Sample x Height replicas of the shard's gradient   one Allreduce per layer with replicas
/// theta_i = theta_i - eta update(g_i)                                   each shard its own optimizer
/// </code>
/// which is single-rank training with batch B on the same samples (the tests compare gradients and parameters).
/// Parameters start as the single-rank model's (built whole with the run's seed, each rank copying its shards).
/// A transfer is one MPI_Alltoallv whose counts are the blocks' intersections, or point-to-point messages for a halo
/// exchange (its pattern named by <see cref="TransferCosts"/>: Allgather, halo exchange, Alltoall; backward the
/// Reduce-scatter, added halos, Alltoall).
/// </summary>
internal sealed class LayerwiseEngine : ITrainingEngine
{
    /// <summary>Samples per evaluation chunk (all ranks push each chunk through the plan together).</summary>
    private const int EvaluationBatch = 250;

    public static AlgorithmRegistration Registration { get; } = new(
        "layerwise", "layer-wise parallelism (OptCNN): each layer split over samples, channels or height as --plan says",
        [new(TrainFlags.Plan, o => o.Plan is not null)],
        context => new LayerwiseEngine(context))
    {
        Validate = Check,
        Describe = (o, _) => $"layerwise (plan {o.Plan ?? DataPlan})",
    };

    private const string DataPlan = "data", ModelPlan = "model", AutoPlan = "auto";

    private readonly TrainingContext context;
    private readonly Communicator world;
    private readonly PlannedLayer[] layers;
    private readonly Stage[] stages;
    private readonly Optimizer?[] optimizers;
    private readonly Communicator?[] replicaGroups;
    private readonly List<Communicator> ownedGroups = [];
    private readonly long[] layerOffsets;
    private readonly long totalParameters;
    private readonly ShuffleSampler sampler;
    private readonly int[] indices;
    private readonly float[] images;
    private readonly int[] labels;
    private readonly Dictionary<int, BatchLayout> layouts = [];
    /// <summary>Rounds: the sync's Allreduces (their payload, ring bytes and time) and the redistributions that call MPI.</summary>
    private readonly ExchangeCounters exchange = new();
    private readonly List<string> notes = [];
    private readonly LayerwisePlan plan;
    private readonly LayerwiseProfile? profile = LayerwiseProfile.FromEnvironment();
    private readonly string[] forwardParts, backwardParts, intoParts, backParts, syncParts;
    private StepCounters stats;

    public LayerwiseEngine(TrainingContext context)
    {
        this.context = context;
        world = context.World;
        var (options, train) = (context.Options, context.Train);
        var specs = ModelZoo.Build(options.Model, train.Geometry);
        var profiles = StageBuilder.Profile(specs, train.SampleShape);
        plan = options.Plan?.Trim().ToLowerInvariant() == AutoPlan ? SearchedPlan(options, specs, train.SampleShape) : ResolvePlan(options, specs, profiles, world.Size);
        layers = [.. profiles.Select(p => new PlannedLayer(p.Index, p.Layer, ActivationShape.Of(p.InputShape), ActivationShape.Of(p.OutputShape),
            plan.Layers[p.Index]))];
        var source = options.Plan ?? DataPlan;
        LayerGeometry.Check(layers, options.Batch, world.Size, $"--plan {source}");

        layerOffsets = new long[layers.Length];
        for (var l = 1; l < layers.Length; l++)
        {
            layerOffsets[l] = layerOffsets[l - 1] + profiles[l - 1].Parameters;
        }

        totalParameters = profiles.Sum(p => p.Parameters);
        stages = new Stage[layers.Length];
        optimizers = new Optimizer?[layers.Length];
        replicaGroups = new Communicator?[layers.Length];
        var groups = new Dictionary<LayerConfig, Communicator>();
        using (var whole = Stage.Create(specs, train.SampleShape, "cpu", options.Seed))
        {
            for (var l = 0; l < layers.Length; l++)
            {
                var layer = layers[l];
                var need = LayerGeometry.InputBlock(layer, options.Batch, world.Rank);
                stages[l] = Stage.Create([LayerGeometry.Shard(layer, world.Rank)], layer.Input.SampleShape(need.Channels, need.Rows), options.Device, options.Seed);
                var (rows, _) = LayerGeometry.StageRows(layer, options.Batch, world.Rank);
                var output = LayerGeometry.OutputBlock(layer, options.Batch, world.Rank);
                int[] expected = layer.Output.SampleShape(output.Channels, rows);
                if (!stages[l].SampleOutputShape.AsSpan().SequenceEqual(expected))
                {
                    throw new InvalidOperationException(
                        $"internal: {layer} {layer.Config} on rank {world.Rank} gives samples of [{string.Join(", ", stages[l].SampleOutputShape)}], not [{string.Join(", ", expected)}]");
                }

                if (stages[l].ParameterCount == 0)
                {
                    continue;
                }

                MoveShard(whole.Parameters.Slice(checked((int)layerOffsets[l]), checked((int)profiles[l].Parameters)), stages[l].Parameters, layer, toShard: true);
                stages[l].PushParameters();
                optimizers[l] = TrainingLoop.CreateOptimizer(options, stages[l]);
                if (layer.Config.Sample * layer.Config.Height > 1)
                {
                    if (!groups.TryGetValue(layer.Config, out var group))
                    {
                        // The replicas of a shard: the ranks with the same channel coordinate.
                        group = world.Split(LayerGeometry.Coordinates(layer.Config, world.Rank).Channel, world.Rank)!;
                        groups[layer.Config] = group;
                        ownedGroups.Add(group);
                    }

                    replicaGroups[l] = group;
                }
            }
        }

        forwardParts = [.. layers.Select(l => $"forward {l.Index} {l.Spec} {l.Config}")];
        backwardParts = [.. layers.Select(l => $"backward {l.Index} {l.Spec} {l.Config}")];
        intoParts = [.. layers.Select(l => $"transfer into {l.Index}")];
        backParts = [.. layers.Select(l => $"transfer back from {l.Index}")];
        syncParts = [.. layers.Select(l => $"sync {l.Index}")];
        sampler = new ShuffleSampler(train.Count, options.Seed, options.Batch, 0, 1);
        indices = new int[sampler.Batch];
        images = new float[sampler.Batch * train.SampleSize];
        labels = new int[sampler.Batch];
        Plan = context.Plan(world.Size, totalParameters, "shuffle", Registration.Describe(options, world.Size));
        notes.Add(Describe(source, options.Batch));
        if (context.Node.OversubscribedNote("the redistributions block in MPI_Alltoallv", wholeJob: true) is { } oversubscribed)
        {
            notes.Add(oversubscribed);
        }
    }

    public string Algorithm => Registration.Name;

    public TrainingPlan Plan { get; }

    public IReadOnlyList<string> Notes => notes;

    /// <summary>Each rank computes the loss of its 1/R of the samples: rank 0 sees a share.</summary>
    public bool RootSeesBatchLoss => false;

    public long CommunicationRounds => exchange.Rounds;

    public double Start()
    {
        var spread = ReplicaSpread();
        world.Barrier();
        return spread;
    }

    public LossResult Step(long t)
    {
        var (options, train) = (context.Options, context.Train);
        var clock = Stopwatch.StartNew();
        sampler.Indices(t, indices);
        train.CopyBatch(indices, images, labels);
        stats += new StepCounters { DataSeconds = clock.Elapsed.TotalSeconds };
        TorchRuntime.ManualSeed(Shuffle.SeedFor(options.Seed, world.Rank, t));
        var mark = LayerwiseProfile.Now();
        foreach (var stage in stages)
        {
            stage.ZeroGradients();
        }

        profile?.Add("zero gradients", mark);
        var layout = Layout(options.Batch);
        var result = Forward(layout, images, labels, training: true);
        Backward(layout);

        for (var l = 0; l < layers.Length; l++)
        {
            // The host mirrors (a no-op on CPU) are what the guard, the first-gradients file and MPI read.
            mark = LayerwiseProfile.Now();
            stages[l].PullGradients();
            if (replicaGroups[l] is { } group)
            {
                var sync = Stopwatch.StartNew();
                group.Allreduce(stages[l].Gradients, ReduceOp.Sum);   // g_i: the shard's replicas' sum
                stages[l].PushGradients();
                exchange.AddRound(stages[l].Gradients.Length * (long)sizeof(float), group.Size, sync.Elapsed.TotalSeconds);
                profile?.Add(syncParts[l], mark);
            }
        }
        if (t == 0 && options.FirstGradientsPath is { } path && Gather(stage => stage.Gradients) is { } gradients)
        {
            TrainingLoop.WriteParameters(path, gradients);
        }

        var update = Stopwatch.StartNew();
        mark = LayerwiseProfile.Now();
        var healthy = context.Guard.Check(t, world, world.Rank, result, OwnGradientsSquaredNorm(), context.Node.AllreduceWait);
        profile?.Add("guard", mark);
        if (healthy)
        {
            mark = LayerwiseProfile.Now();
            foreach (var optimizer in optimizers)
            {
                optimizer?.Step();
            }

            profile?.Add("optimizer", mark);
        }

        stats += new StepCounters
        {
            Steps = 1, Samples = result.Count, ComputeSeconds = update.Elapsed.TotalSeconds, StepSeconds = clock.Elapsed.TotalSeconds,
        };
        return result;
    }

    public double CurveMean(double localSum, int count) => world.Allreduce(localSum, ReduceOp.Sum) / (world.Size * count);

    public void ReduceTally(LossTally tally) => tally.Allreduce(world);

    /// <summary>Test loss and accuracy: every rank pushes each chunk of the test set through the plan; the loss ranks tally.</summary>
    public (double Loss, double Accuracy) Evaluate()
    {
        var clock = Stopwatch.StartNew();
        var tally = LossTally.Evaluate(context.Test, 0, 1, EvaluationBatch,
            (chunk, chunkLabels, count) => Forward(Layout(count), chunk, chunkLabels, training: false));
        tally.Allreduce(world);
        stats += new StepCounters { EvaluationSeconds = clock.Elapsed.TotalSeconds };
        return tally.Means();
    }

    public EpochCounters EpochCounters() => stats.Epoch(exchange, world);

    public (double Compute, double Communication) OwnSeconds() => (stats.ComputeSeconds, stats.CommunicationSeconds);

    /// <summary>max over parameters of (max - min over a shard's replicas), the maximum over layers and ranks.</summary>
    public double ReplicaSpread()
    {
        var spread = 0.0;
        for (var l = 0; l < layers.Length; l++)
        {
            if (replicaGroups[l] is { } group)
            {
                spread = Math.Max(spread, TrainingLoop.ReplicaSpread(stages[l], group));
            }
        }

        return world.Allreduce(spread, ReduceOp.Max);
    }

    public RunTotals Totals() => stats.ReduceTotals(world, exchange);

    public void DescribeOptions(IDictionary<string, string> options) =>
        options["plan"] = string.Join(",", plan.Layers.Select(layer => layer.ToString()));

    public void SaveParameters(string path)
    {
        foreach (var stage in stages)
        {
            stage.PullParameters();
        }

        if (Gather(stage => stage.Parameters) is { } whole)
        {
            TrainingLoop.WriteParameters(path, whole);
        }
    }

    public Checkpoint? Capture(CheckpointHeader header) =>
        throw new InvalidOperationException("internal: --algo layerwise refuses --checkpoint up front");

    public void Restore(Checkpoint checkpoint, string path) =>
        throw new InvalidOperationException("internal: --algo layerwise refuses --resume up front");

    public void Finish()
    {
        if (profile is not null && stats.Steps > 0)
        {
            Console.Error.WriteLine($"rank {world.Rank}: {profile.Describe(stats.Steps)}");
        }

        foreach (var group in ownedGroups)
        {
            group.Free();
        }
    }

    public void Dispose()
    {
        foreach (var optimizer in optimizers)
        {
            optimizer?.Dispose();
        }

        foreach (var stage in stages)
        {
            stage?.Dispose();
        }
    }

    /// <summary>The options the layer-wise engine refuses before any work: checkpoints, a batch R does not divide.</summary>
    private static void Check(TrainOptions options, int workers)
    {
        if (options.CheckpointDirectory is not null || options.ResumePath is not null)
        {
            throw new InputException($"--algo layerwise does not checkpoint yet ({TrainFlags.Checkpoint}, {TrainFlags.Resume}): its per-layer shards have no checkpoint layout");
        }

        if (options.Batch % workers != 0)
        {
            throw new InputException(
                $"--batch {options.Batch}: the layer-wise engine computes the loss on batch / R samples per rank, so R = {workers} must divide it; try --batch {(options.Batch / workers + 1) * workers}");
        }
    }

    /// <summary>
    /// <c>--plan auto</c>: rank 0 runs the search of <c>mpipipe plan</c> (layer times measured once per shard and kept in
    /// <see cref="MeasuredLayerTimes.DefaultPath"/>, this machine's shared-memory alpha-beta figures) while the others
    /// wait for the plan in a broadcast: one measurement, not one per rank competing for the cores, and the same plan
    /// everywhere.
    /// </summary>
    private LayerwisePlan SearchedPlan(TrainOptions options, IReadOnlyList<LayerSpec> specs, int[] sampleShape)
    {
        byte[] json = [];
        if (world.Rank == 0)
        {
            var threads = Math.Max(1, TorchRuntime.Threads);
            var concurrent = MeasuredLayerTimes.Concurrent(world.Size, threads);
            var times = new MeasuredLayerTimes(MeasuredLayerTimes.DefaultPath, MeasuredLayerTimes.Environment(threads, concurrent), concurrent: concurrent);
            var model = new LayerwiseCostModel(LayerNode.Of(specs, sampleShape), options.Batch, world.Size, times, LayerwiseNetwork.SharedMemory);
            var searched = model.Evaluate(model.Search());
            times.Save();
            json = Encoding.UTF8.GetBytes(new LayerwisePlan(options.Model, world.Size, searched.Configs, searched.Step).ToJson());
        }

        var length = world.Size > 1 ? Broadcast(json.Length) : json.Length;
        if (world.Rank != 0)
        {
            json = new byte[length];
        }

        world.Bcast<byte>(json, 0);
        var plan = LayerwisePlan.FromJson(Encoding.UTF8.GetString(json), "--plan auto");
        notes.Add(string.Create(CultureInfo.InvariantCulture,
            $"--plan auto: searched on rank 0 ({string.Join(' ', plan.Layers)}), predicted step {1000 * plan.PredictedStepSeconds:F1} ms on shared memory; layer times cached in {MeasuredLayerTimes.DefaultPath}"));
        return plan;
    }

    private int Broadcast(int value)
    {
        Span<int> one = [value];
        world.Bcast(one, 0);
        return one[0];
    }

    /// <summary>The plan --plan names: data, model, or a plan file for this model and this many ranks.</summary>
    private static LayerwisePlan ResolvePlan(TrainOptions options, IReadOnlyList<LayerSpec> specs, IReadOnlyList<LayerProfile> profiles, int ranks)
    {
        var text = options.Plan ?? DataPlan;
        switch (text.Trim().ToLowerInvariant())
        {
            case DataPlan:
                return LayerwisePlan.DataParallel(options.Model, ranks, specs.Count);
            case ModelPlan:
                return new LayerwisePlan(options.Model, ranks, [.. profiles.Select(p => LayerGeometry.ModelParallel(
                    new PlannedLayer(p.Index, p.Layer, ActivationShape.Of(p.InputShape), ActivationShape.Of(p.OutputShape), default), ranks, options.Batch))]);
        }

        string json;
        try
        {
            json = File.ReadAllText(text);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new InputException($"--plan {text}: not data, model or auto, and not a readable plan file: {error.Message}");
        }

        var file = LayerwisePlan.FromJson(json, text);
        if (!string.Equals(file.Model, options.Model, StringComparison.OrdinalIgnoreCase))
        {
            throw new InputException($"{text}: the plan is for model '{file.Model}', the run trains '{options.Model}'");
        }

        if (file.Ranks != ranks)
        {
            throw new InputException($"{text}: the plan is for {file.Ranks} ranks, the job has {ranks}");
        }

        if (file.Layers.Count != specs.Count)
        {
            throw new InputException($"{text}: the plan gives {file.Layers.Count} layer configurations, model '{options.Model}' has {specs.Count} layers");
        }

        return file;
    }

    /// <summary>The run's note: each layer's configuration and the transfer into it (pattern, bytes per rank forward/backward).</summary>
    private string Describe(string source, int batch)
    {
        var parts = new List<string>();
        for (var l = 0; l < layers.Length; l++)
        {
            var into = l == 0 ? "" : Transfer(TransferCosts.Between(layers[l - 1], layers[l], batch, world.Size));
            parts.Add($"{l} {layers[l].Spec} {layers[l].Config}{into}");
        }

        return $"layer-wise plan {source}: {string.Join("; ", parts)}; loss{Transfer(TransferCosts.ToLoss(layers[^1], batch, world.Size))}";

        static string Transfer(TransferCost cost) => cost.Kind == TransferKind.None
            ? ""
            : $" <- {cost.Collectives.Forward} {cost.ForwardBytesPerRank} B / {cost.Collectives.Backward} {cost.BackwardBytesPerRank} B";
    }

    /// <summary>Forward through every layer and the loss of this rank's samples; with <paramref name="training"/> keeps the graphs
    /// and the logits' gradient for <see cref="Backward"/>.</summary>
    private LossResult Forward(BatchLayout layout, ReadOnlySpan<float> batchImages, ReadOnlySpan<int> batchLabels, bool training)
    {
        var compute = 0.0;
        var bytes = 0L;
        var rounds = 0;
        var communication = Stopwatch.StartNew();
        var first = layout.Layers[0];
        ActivationBlock.Copy(batchImages, layout.Whole, first.Input, first.Need, first.Need, layers[0].Input.Columns);
        communication.Stop();
        for (var l = 0; l < layers.Length; l++)
        {
            var buffers = layout.Layers[l];
            var mark = LayerwiseProfile.Now();
            if (l > 0 && !layout.Into[l].IsIdentity)
            {
                communication.Start();
                layout.Into[l].Forward(layout.Layers[l - 1].Output, buffers.Input, world);
                communication.Stop();
                bytes += layout.Into[l].ForwardBytes;
                rounds += layout.Into[l].CallsMpi ? 1 : 0;
                Profile(intoParts[l], mark);
            }

            mark = LayerwiseProfile.Now();
            var clock = Stopwatch.StartNew();
            if (buffers.Need.Samples > 0)
            {
                if (training)
                {
                    stages[l].Forward(0, buffers.Input, buffers.Need.Samples, buffers.StageOutput, requireInputGradient: l > 0);
                }
                else
                {
                    stages[l].Infer(buffers.Input, buffers.Need.Samples, buffers.StageOutput);
                }

                if (!ReferenceEquals(buffers.StageOutput, buffers.Output))
                {
                    ActivationBlock.Copy(buffers.StageOutput, buffers.StageBlock, buffers.Output, buffers.Own, buffers.Own, layers[l].Output.Columns);
                }
            }

            compute += clock.Elapsed.TotalSeconds;
            Profile(forwardParts[l], mark);
        }

        var lossMark = LayerwiseProfile.Now();
        if (!layout.LossInPlace)
        {
            communication.Start();
            layout.ToLoss.Forward(layout.Layers[^1].Output, layout.Logits, world);
            communication.Stop();
            bytes += layout.ToLoss.ForwardBytes;
            rounds += layout.ToLoss.CallsMpi ? 1 : 0;
        }

        var loss = layout.LossBlock;
        LossResult result = default;
        if (loss.Samples > 0)
        {
            // dL/dz of the mean over all B samples: each rank's mean over its B / R, scaled by 1 / R.
            result = CrossEntropy.LossAndGradient(layout.Logits, loss.Samples, batchLabels[loss.S0..loss.S1], 1f / world.Size, layout.LogitGradient);
        }

        Profile("loss (transfer and cross-entropy)", lossMark);

        if (training)
        {
            // Evaluation's forwards count as evaluation time (Evaluate), not as training compute and communication.
            stats += new StepCounters
            {
                ComputeSeconds = compute, ForwardSeconds = compute, CommunicationSeconds = communication.Elapsed.TotalSeconds, PointToPointBytes = bytes,
            };
            CountRounds(rounds);
        }

        return result;

        void Profile(string part, (long, double) since)
        {
            if (training)
            {
                profile?.Add(part, since);
            }
        }
    }

    /// <summary>The gradients back from the loss through every layer, each transfer reversed (pieces added where they meet).</summary>
    private void Backward(BatchLayout layout)
    {
        var compute = 0.0;
        var bytes = 0L;
        var rounds = 0;
        var mark = LayerwiseProfile.Now();
        var communication = Stopwatch.StartNew();
        if (!layout.LossInPlace)
        {
            Array.Clear(layout.Layers[^1].OutputGradient);
            layout.ToLoss.Backward(layout.LogitGradient, layout.Layers[^1].OutputGradient, world);
            bytes += layout.ToLoss.BackwardBytes;
            rounds += layout.ToLoss.CallsMpi ? 1 : 0;
        }

        communication.Stop();
        profile?.Add("loss gradient back", mark);
        for (var l = layers.Length - 1; l >= 0; l--)
        {
            var buffers = layout.Layers[l];
            mark = LayerwiseProfile.Now();
            var clock = Stopwatch.StartNew();
            if (!ReferenceEquals(buffers.StageOutputGradient, buffers.OutputGradient))
            {
                // The halo rows a height-split conv dropped get no gradient.
                Array.Clear(buffers.StageOutputGradient);
                ActivationBlock.Copy(buffers.OutputGradient, buffers.Own, buffers.StageOutputGradient, buffers.StageBlock, buffers.Own, layers[l].Output.Columns);
            }

            if (buffers.Need.Samples > 0)
            {
                stages[l].Backward(0, buffers.StageOutputGradient, l > 0 ? buffers.InputGradient : []);
            }

            compute += clock.Elapsed.TotalSeconds;
            profile?.Add(backwardParts[l], mark);
            if (l > 0 && !layout.Into[l].IsIdentity)
            {
                mark = LayerwiseProfile.Now();
                communication.Start();
                Array.Clear(layout.Layers[l - 1].OutputGradient);
                layout.Into[l].Backward(buffers.InputGradient, layout.Layers[l - 1].OutputGradient, world);
                communication.Stop();
                bytes += layout.Into[l].BackwardBytes;
                rounds += layout.Into[l].CallsMpi ? 1 : 0;
                profile?.Add(backParts[l], mark);
            }
        }

        CountRounds(rounds);

        stats += new StepCounters
        {
            ComputeSeconds = compute, BackwardSeconds = compute, CommunicationSeconds = communication.Elapsed.TotalSeconds, PointToPointBytes = bytes,
        };
    }

    private void CountRounds(int rounds)
    {
        for (var k = 0; k < rounds; k++)
        {
            exchange.AddRound();
        }
    }

    /// <summary>
    /// Copies a layer's parameters between the whole layer's flat block (weights, then biases, as libtorch lays out
    /// linear and conv2d) and this rank's shard: a channel split holds rows [c0, c1) of the weights and of the biases.
    /// </summary>
    private void MoveShard(Span<float> whole, Span<float> shard, PlannedLayer layer, bool toShard)
    {
        if (shard.Length == whole.Length)
        {
            if (toShard)
            {
                whole.CopyTo(shard);
            }
            else
            {
                shard.CopyTo(whole);
            }

            return;
        }

        var channels = layer.Output.Channels;
        var rowSize = (whole.Length - channels) / channels;
        var own = LayerGeometry.OutputBlock(layer, layer.Config.Sample, world.Rank);
        if (rowSize * channels + channels != whole.Length || shard.Length != own.Channels * (rowSize + 1))
        {
            throw new InvalidOperationException($"internal: {layer} has {whole.Length} parameters, not weights and a bias of {channels} channels");
        }

        var weights = whole.Slice(own.C0 * rowSize, own.Channels * rowSize);
        var biases = whole.Slice(channels * rowSize + own.C0, own.Channels);
        if (toShard)
        {
            weights.CopyTo(shard);
            biases.CopyTo(shard[weights.Length..]);
        }
        else
        {
            shard[..weights.Length].CopyTo(weights);
            shard[weights.Length..].CopyTo(biases);
        }
    }

    /// <summary>
    /// The whole model's flat buffer on rank 0 (null elsewhere): the rank at sample 0, height 0 of each channel block
    /// writes its shard where the single-rank model holds it, and one Reduce sums the disjoint parts.
    /// </summary>
    private float[]? Gather(Func<Stage, Span<float>> buffer)
    {
        var whole = new float[totalParameters];
        for (var l = 0; l < layers.Length; l++)
        {
            var (s, _, h) = LayerGeometry.Coordinates(layers[l].Config, world.Rank);
            var count = (int)(l + 1 < layers.Length ? layerOffsets[l + 1] - layerOffsets[l] : totalParameters - layerOffsets[l]);
            if (s == 0 && h == 0 && count > 0)
            {
                MoveShard(whole.AsSpan((int)layerOffsets[l], count), buffer(stages[l]), layers[l], toShard: false);
            }
        }

        world.Reduce<float>(whole, ReduceOp.Sum, 0);
        return world.Rank == 0 ? whole : null;
    }

    /// <summary>The squared norm of this rank's shards' gradients, for the divergence guard: summed over the stages'
    /// buffers where they lie (a copy into one buffer cost a pass over every parameter per step).</summary>
    private double OwnGradientsSquaredNorm()
    {
        var sum = 0.0;
        foreach (var stage in stages)
        {
            sum += NonFiniteValue.SquaredNorm(stage.Gradients);
        }

        return sum;
    }

    private BatchLayout Layout(int batch)
    {
        if (!layouts.TryGetValue(batch, out var layout))
        {
            layout = new BatchLayout(layers, batch, world.Size, world.Rank, context.Train.SampleShape);
            layouts[batch] = layout;
        }

        return layout;
    }

    /// <summary>One layer's blocks and buffers on this rank for one batch size.</summary>
    private sealed class LayerBuffers
    {
        /// <param name="producer">The previous layer's buffers when the transfer between is the identity
        /// (<see cref="BlockTransfer.IsIdentity"/>): this layer reads its output and writes its output gradient in place.</param>
        public LayerBuffers(PlannedLayer layer, int batch, int rank, LayerBuffers? producer)
        {
            Need = LayerGeometry.InputBlock(layer, batch, rank);
            Own = LayerGeometry.OutputBlock(layer, batch, rank);
            var (rows, offset) = LayerGeometry.StageRows(layer, batch, rank);
            StageBlock = Own with { R0 = Own.R0 - offset, R1 = Own.R0 - offset + rows };
            var length = Need.Elements(layer.Input.Columns);
            if (producer is not null && producer.Output.LongLength != length)
            {
                throw new InvalidOperationException($"internal: {layer} needs {length} values, the identity transfer into it holds {producer.Output.Length}");
            }

            Input = producer?.Output ?? new float[length];
            InputGradient = producer?.OutputGradient ?? new float[length];
            Output = new float[Own.Elements(layer.Output.Columns)];
            OutputGradient = new float[Output.Length];
            var cropped = StageBlock != Own;
            StageOutput = cropped ? new float[StageBlock.Elements(layer.Output.Columns)] : Output;
            StageOutputGradient = cropped ? new float[StageOutput.Length] : OutputGradient;
        }

        public ActivationBlock Need { get; }

        public ActivationBlock Own { get; }

        /// <summary>The rows the stage computes (its own block plus, for a height-split conv, the halo rows it drops).</summary>
        public ActivationBlock StageBlock { get; }

        public float[] Input { get; }

        public float[] InputGradient { get; }

        public float[] Output { get; }

        public float[] OutputGradient { get; }

        public float[] StageOutput { get; }

        public float[] StageOutputGradient { get; }
    }

    /// <summary>Every layer's blocks, buffers and transfers on this rank for batches of one size.</summary>
    private sealed class BatchLayout
    {
        public BatchLayout(PlannedLayer[] layers, int batch, int ranks, int rank, int[] sampleShape)
        {
            var image = ActivationShape.Of(sampleShape);
            Whole = new ActivationBlock(0, batch, 0, image.Channels, 0, image.Rows);
            Layers = new LayerBuffers[layers.Length];
            Into = new BlockTransfer[layers.Length];
            for (var l = 0; l < layers.Length; l++)
            {
                if (l > 0)
                {
                    var (producer, consumer) = (layers[l - 1], layers[l]);
                    Into[l] = new BlockTransfer(
                        [.. Enumerable.Range(0, ranks).Select(r => LayerGeometry.OutputBlock(producer, batch, r))],
                        [.. Enumerable.Range(0, ranks).Select(r => LayerGeometry.InputBlock(consumer, batch, r))],
                        rank, producer.Output.Columns);
                }

                // Same layout on both sides (e.g. every layer of data parallelism): one buffer, no copies.
                Layers[l] = new LayerBuffers(layers[l], batch, rank, l > 0 && Into[l].IsIdentity ? Layers[l - 1] : null);
            }

            var last = layers[^1];
            var classes = last.Output.Channels;
            LossBlock = LayerGeometry.LossBlock(batch, classes, ranks, rank);
            ToLoss = new BlockTransfer(
                [.. Enumerable.Range(0, ranks).Select(r => LayerGeometry.OutputBlock(last, batch, r))],
                [.. Enumerable.Range(0, ranks).Select(r => LayerGeometry.LossBlock(batch, classes, ranks, r))],
                rank, 1);
            var logits = LossBlock.Elements(1);
            LossInPlace = ToLoss.IsIdentity && Layers[^1].Output.LongLength == logits;
            Logits = LossInPlace ? Layers[^1].Output : new float[logits];
            LogitGradient = LossInPlace ? Layers[^1].OutputGradient : new float[logits];
        }

        /// <summary>The whole batch of input images, as a block.</summary>
        public ActivationBlock Whole { get; }

        public LayerBuffers[] Layers { get; }

        /// <summary>Into[l]: from layer l - 1's output blocks to layer l's input blocks (Into[0] unused: layer 0 cuts the data).</summary>
        public BlockTransfer[] Into { get; }

        public BlockTransfer ToLoss { get; }

        /// <summary>The loss reads the last layer's output buffer and writes its gradient there (<see cref="ToLoss"/> is the identity).</summary>
        public bool LossInPlace { get; }

        public ActivationBlock LossBlock { get; }

        public float[] Logits { get; }

        public float[] LogitGradient { get; }
    }
}
