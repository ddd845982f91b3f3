using System.Diagnostics;
using System.Globalization;
using System.Text;
using MpiPipeline.Algorithms;
using MpiPipeline.Benchmarks;
using MpiPipeline.Data;
using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Engines;

/// <summary>
/// <c>--algo pipeline</c>: pipeline parallelism (GPipe, Huang et al. 2019; 1F1B, Narayanan et al. 2021) over S stages,
/// optionally times D data-parallel replicas (the grid, <see cref="PipelineGrid"/>). Per mini-batch of B samples:
/// <code>
/// replica d takes its B/D samples of the global batch (the PSGD split: slice d of the epoch's order), cut into M
///   micro-batches of b = B/(D M);
/// g_s = sum_{i=0..M-1} grad_s [ (1/M) L(micro-batch i) ]    accumulated by the executor over the schedule's steps
/// g_s = (1/D) sum_d g_s^(d)                                 one Allreduce over the stage's replicas (D > 1)
/// theta_s = theta_s - eta update(g_s)                       one optimizer step per mini-batch, on each stage
/// </code>
/// which is single-rank training with batch B on the same samples (the tests compare the flat gradients and
/// parameters). The loop, evaluation and reporting are <see cref="TrainingLoop"/>'s.
/// <para>
/// Data: every rank loads the data set itself (the same files, the same deterministic order), so no sample ever
/// travels between ranks: the first stage copies its micro-batches' images, the last stage their labels, the middle
/// stages neither. Evaluation pushes the test set through the pipeline without graphs (<see cref="Stage.Infer"/>),
/// each replica a share of it; the last stages count the loss and the correct answers.
/// </para>
/// </summary>
internal sealed class PipelineEngine : ITrainingEngine
{
    /// <summary>The no-hang tests' hook: "rank:step" makes that world rank throw in mid-pipeline at that step.</summary>
    public const string ThrowAtVariable = "MPIPIPE_TEST_THROW_AT";

    /// <summary>Samples per evaluation message: a cnn's first activations are 50 KB per sample.</summary>
    private const int EvaluationBatch = 200;

    public static AlgorithmRegistration Registration { get; } = new(
        "pipeline", "pipeline parallelism (GPipe or 1F1B) over S stages, times D data-parallel replicas of each stage",
        [
            new(TrainFlags.Stages, o => o.Stages is not null),
            new(TrainFlags.Replicas, o => o.Replicas is not null),
            new(TrainFlags.MicroBatches, o => o.MicroBatches is not null),
            new(TrainFlags.Schedule, o => o.Schedule is not null),
            new(TrainFlags.Balance, o => o.Balance is not null),
            new(TrainFlags.Partition, o => o.PartitionBy is not null),
            new(TrainFlags.Trace, o => o.TracePath is not null),
            .. DataParallelEngine.GradientOptions,
            DataParallelEngine.CompressOption,
        ],
        context => new PipelineEngine(context))
    {
        Validate = Check,
    };

    private readonly TrainingContext context;
    private readonly PipelineGrid grid;
    private readonly Stage stage;
    private readonly Optimizer optimizer;
    private readonly Schedule schedule;
    private readonly ChromeTrace trace;
    private readonly PipelineExecutor executor;
    private readonly IGradientExchange exchange;
    private readonly OverlappedAllreduceExchange? overlapped;
    private readonly ShuffleSampler sampler;
    private readonly int[] indices;
    private readonly float[] images;
    private readonly int[] labels;
    private readonly (int Rank, long Step)? throwAt;
    private readonly PipelinePlan layout;
    private readonly double[] layerSeconds;
    private readonly List<string> notes = [];
    private readonly IReadOnlyList<CheckpointLayer> modelLayers;
    private readonly LayerRange range;
    private StepCounters stats;

    // Figures of the steady state (the first mini-batch warms libtorch and MPI up), for the summary.
    private readonly double[] stepSeconds;
    private StepCounters measured;
    private double bubbleSum;

    public PipelineEngine(TrainingContext context)
    {
        this.context = context;
        var (world, options, train) = (context.World, context.Options, context.Train);
        var (stages, replicas) = options.GridShape(world.Size);
        var microBatches = options.EffectiveMicroBatches;
        throwAt = ParseThrowAt(Environment.GetEnvironmentVariable(ThrowAtVariable));
        var layers = ModelZoo.Build(options.Model, train.Geometry);
        if (TorchScriptModel.WhyNotCut(layers, stages) is { } reason)
        {
            throw new InputException($"--stages {stages}: {reason}");
        }

        if (stages > layers.Count)
        {
            throw new InputException(
                $"--stages {stages}: the model '{options.Model}' has only {layers.Count} layers and every stage needs at least one; use at most {layers.Count} stages");
        }

        // A bad balance is reported before any work.
        var balanced = options.Balance is { } text ? Partition.ByBalance(layers.Count, Partition.ParseBalance(text)) : null;
        var microBatchSize = options.Batch / replicas / microBatches;
        grid = PipelineGrid.Create(world, stages, replicas);
        var measure = balanced is null && options.EffectivePartitionBy == PartitionCost.Time;
        var profiles = StageBuilder.Profile(layers, train.SampleShape, measure ? microBatchSize : null);
        layerSeconds = measure ? profiles.Select(p => p.Seconds).ToArray() : [];
        if (measure)
        {
            // Each rank measured; rank 0's numbers decide, so every rank cuts the model the same way.
            world.Bcast<double>(layerSeconds, 0);
        }

        var ranges = balanced ?? Partition.ByCost(measure ? layerSeconds : profiles.Select(p => (double)p.Parameters).ToArray(), stages);
        layout = new PipelinePlan(options.EffectiveSchedule == ScheduleKind.GPipe ? "gpipe" : "1f1b", stages, replicas, microBatches,
            microBatchSize, balanced is not null ? "balance" : options.EffectivePartitionBy.ToString().ToLowerInvariant(),
            Partition.ToBalance(ranges), [.. ranges.Select(r => profiles.Skip(r.Start).Take(r.Count).Sum(p => p.Parameters))],
            [.. ranges.Select(r => $"{r} {string.Join(", ", layers.Skip(r.Start).Take(r.Count))}")]);

        modelLayers = [.. profiles.Select(p => new CheckpointLayer(p.Layer.ToString(), p.Parameters))];
        range = ranges[grid.Stage];
        stage = StageBuilder.Create(layers, profiles, train.SampleShape, range, options.Device, options.Seed);
        optimizer = TrainingLoop.CreateOptimizer(options, stage);
        schedule = Schedule.Create(options.EffectiveSchedule, stages, microBatches);
        trace = new ChromeTrace(world.Rank, $"stage {grid.Stage}, replica {grid.Replica}");
        executor = new PipelineExecutor(stage, schedule, grid.Stage, grid.Pipeline, microBatchSize, trace, context.Node.PipelineWait);
        if (GradientOverlap.Applies(options, stage, grid.Replicas))
        {
            overlapped = GradientOverlap.Attach(options, stage, grid.Replicas, context.Node.AllreduceWait, world.Rank);
            exchange = overlapped;
        }
        else if (CompressorRegistry.Create(options.Compress, new CompressorContext(options.Seed, world.Rank)) is { } compressor)
        {
            // Each stage's replicas average that stage's gradients: a compressor per stage, seeded by the world rank.
            exchange = new CompressedExchange(grid.Replicas, context.Node.AllreduceWait, compressor);
        }
        else
        {
            exchange = ExchangeRegistry.Find(options.Exchange).Create(grid.Replicas, context.Node.AllreduceWait);
        }

        sampler = new ShuffleSampler(train.Count, options.Seed, options.Batch, grid.Replica, replicas);
        indices = new int[sampler.Batch];
        images = grid.IsFirstStage ? new float[sampler.Batch * train.SampleSize] : [];
        labels = grid.IsFirstStage || grid.IsLastStage ? new int[sampler.Batch] : []; // the first stage's are not used
        stepSeconds = new double[context.TotalSteps];
        Plan = context.Plan(replicas, layout.ParametersPerStage.Sum(), "shuffle", Registration.Name, layout);
        if (context.Node.OversubscribedNote("stages that wait for a message sleep between polls so that they leave the cores to the stages that compute")
            is { } oversubscribed)
        {
            notes.Add(oversubscribed);
        }
    }

    public string Algorithm => Registration.Name;

    public TrainingPlan Plan { get; }

    public IReadOnlyList<string> Notes => [.. notes, .. GradientOverlap.Notes(overlapped, context.Options), .. GradientCompression.Notes(exchange)];

    /// <summary>The loss lives on the last stages; rank 0 is a first stage.</summary>
    public bool RootSeesBatchLoss => false;

    public long CommunicationRounds => exchange.Counters.Rounds;

    public double Start()
    {
        var spread = ReplicaSpread();
        context.World.Barrier();
        trace.ResetOrigin();
        return spread;
    }

    public LossResult Step(long t)
    {
        var (world, options, train) = (context.World, context.Options, context.Train);
        var stepStart = trace.Now();
        if (grid.IsFirstStage || grid.IsLastStage)
        {
            sampler.Indices(t, indices);
            if (grid.IsFirstStage)
            {
                train.CopyBatch(indices, images, labels);
            }
            else
            {
                train.CopyLabels(indices, labels);
            }
        }

        stats += new StepCounters { DataSeconds = (trace.Now() - stepStart) * 1e-6 };
        TorchRuntime.ManualSeed(Shuffle.SeedFor(options.Seed, world.Rank, t));
        stage.ZeroGradients();
        if (overlapped is not null)
        {
            // Every stage runs one backward per micro-batch; the last leaves the gradients final.
            GradientOverlap.BeginStep(overlapped, stage, backwardCalls: layout.MicroBatches);
        }

        var before = executor.Totals;
        var runStart = trace.Now();
        int? failBeforeForward = throwAt is (var rank, var step) && rank == world.Rank && step == t ? layout.MicroBatches / 2 : null;
        var result = executor.Run(images, labels, failBeforeForward);
        var runEnd = trace.Now();
        var spans = executor.Spans;
        stage.PullGradients();
        if (grid.ReplicaCount > 1)
        {
            var start = trace.Now();
            exchange.AverageGradients(stage.Gradients);   // g_s = (1/D) sum_d g_s^(d): the replicas of stage s average
            stage.PushGradients();
            if (options.TracePath is not null)
            {
                if (overlapped is not null)
                {
                    foreach (var bucket in overlapped.LastRound)
                    {
                        trace.Add($"allreduce bucket {bucket.Bucket}", TraceCategory.Allreduce, trace.At(bucket.StartTimestamp),
                            trace.At(bucket.EndTimestamp) - trace.At(bucket.StartTimestamp));
                    }
                }
                else
                {
                    trace.Add("allreduce", TraceCategory.Allreduce, start, trace.Now() - start);
                }
            }
        }

        if (t == 0 && options.FirstGradientsPath is { } gradientsPath && GatherToRoot(stage.Gradients) is { } gradients)
        {
            TrainingLoop.WriteParameters(gradientsPath, gradients);
        }

        var optimizerStart = trace.Now();
        if (context.Guard.Check(t, world, world.Rank, result, stage.Gradients, context.Node.AllreduceWait))
        {
            optimizer.Step();              // theta_s <- theta_s - eta update(g_s)
        }

        var stepEnd = trace.Now();
        if (options.TracePath is not null)
        {
            foreach (var span in spans)
            {
                trace.Add(span);
            }

            trace.Add("optimizer", TraceCategory.Optimizer, optimizerStart, stepEnd - optimizerStart);
        }

        var delta = executor.Totals - before;     // one mini-batch: Steps = 1
        stepSeconds[t] = (stepEnd - stepStart) * 1e-6;
        stats += delta with
        {
            ComputeSeconds = delta.ForwardSeconds + delta.BackwardSeconds + (stepEnd - optimizerStart) * 1e-6,
            CommunicationSeconds = delta.ReceiveWaitSeconds + delta.SendSeconds,
            StepSeconds = stepSeconds[t],
            Samples = result.Count,
        };
        if (t > 0 || context.TotalSteps == 1)
        {
            measured += delta;
            bubbleSum += runEnd > runStart ? ChromeTrace.MeasuredBubble(spans, runStart, runEnd) : 0;
        }

        return result;
    }

    /// <summary>One small Allreduce per curve point brings the last stages' losses to rank 0.</summary>
    public double CurveMean(double localSum, int count) =>
        context.World.Allreduce(localSum, ReduceOp.Sum) / (grid.ReplicaCount * count);

    public void ReduceTally(LossTally tally) => tally.Allreduce(context.World);

    /// <summary>Test loss and accuracy: each replica pushes its share of the test set through its pipeline, every
    /// stage with its BatchNorm running statistics averaged over the stage's replicas first (and kept averaged).</summary>
    public (double Loss, double Accuracy) Evaluate()
    {
        var clock = Stopwatch.StartNew();
        if (grid.ReplicaCount > 1 && stage.BufferLength > 0)
        {
            var buffers = stage.GetBuffers();
            grid.Replicas.Allreduce<float>(buffers, ReduceOp.Sum);
            for (var i = 0; i < buffers.Length; i++)
            {
                buffers[i] /= grid.ReplicaCount;
            }

            stage.SetBuffers(buffers);
        }

        var tally = LossTally.Evaluate(context.Test, grid.Replica, grid.ReplicaCount, EvaluationBatch, executor.EvaluateBatch);
        tally.Allreduce(context.World);
        stats += new StepCounters { EvaluationSeconds = clock.Elapsed.TotalSeconds };
        return tally.Means();
    }

    /// <summary>Means over the world's ranks of bytes and times; rounds are this rank's.</summary>
    public EpochCounters EpochCounters() => stats.Epoch(exchange.Counters, context.World);

    public (double Compute, double Communication) OwnSeconds() => (stats.ComputeSeconds, stats.CommunicationSeconds + exchange.Counters.Seconds);

    /// <summary>max over parameters of (max - min over the replicas of a stage), the maximum over stages.</summary>
    public double ReplicaSpread()
    {
        var spread = grid.ReplicaCount > 1 ? TrainingLoop.ReplicaSpread(stage, grid.Replicas) : 0.0;
        return context.World.Allreduce(spread, ReduceOp.Max);
    }

    public RunTotals Totals() => stats.ReduceTotals(context.World, exchange.Counters);

    public void DescribeOptions(IDictionary<string, string> options)
    {
        options["schedule"] = layout.Schedule;
        options["stages"] = layout.Stages.ToString(CultureInfo.InvariantCulture);
        options["replicas"] = layout.Replicas.ToString(CultureInfo.InvariantCulture);
        options["microBatches"] = layout.MicroBatches.ToString(CultureInfo.InvariantCulture);
        options["balance"] = string.Join(',', layout.Balance);
        options["partition"] = layout.Partition;
        GradientOverlap.Describe(options, overlapped, context.Options);
        GradientCompression.Describe(options, exchange);
    }

    public void SaveParameters(string path)
    {
        stage.PullParameters();
        if (GatherToRoot(stage.Parameters) is { } whole)
        {
            TrainingLoop.WriteParameters(path, whole);
        }
    }

    /// <summary>The whole model's parameters and optimizer state per layer (replica 0's stages; the replicas hold the same).</summary>
    public Checkpoint? Capture(CheckpointHeader header)
    {
        stage.PullParameters();
        var state = optimizer.ExportState();
        var parameters = GatherToRoot(stage.Parameters);
        var n = stage.Parameters.Length;
        var optimizerState = Enumerable.Range(0, state.Tensors).Select(k => GatherToRoot(state.Values.AsSpan(k * n, n))).ToList();
        var residuals = GatherResiduals();
        if (context.World.Rank != 0)
        {
            return null;
        }

        var checkpoint = new Checkpoint(header with
        {
            Layers = modelLayers, Stages = grid.Stages, Replicas = grid.ReplicaCount,
            OptimizerTensors = state.Tensors, OptimizerStepCount = state.StepCount, PerWorker = false,
        });
        checkpoint.AddPerLayer("parameters", parameters!);
        for (var k = 0; k < state.Tensors; k++)
        {
            checkpoint.AddPerLayer($"optimizer {k}", optimizerState[k]!);
        }

        if (residuals is not null)
        {
            var total = residuals.Length / grid.ReplicaCount;
            for (var d = 0; d < grid.ReplicaCount; d++)
            {
                checkpoint.AddPerLayer(ResidualName(d), residuals.AsSpan(d * total, total));
            }
        }

        return checkpoint;
    }

    private static string ResidualName(int replica) => $"replica {replica}/residual";

    /// <summary>
    /// An error-feedback compressor's residuals (ECQ's h, top-k's e): each replica's stages send theirs to the
    /// replica's first stage, the first stages gather them on world rank 0, replica after replica (null elsewhere, and
    /// everywhere when the compressor keeps none). Collective over the world.
    /// </summary>
    private float[]? GatherResiduals()
    {
        ReadOnlySpan<float> residual = exchange is ICompressingExchange { Compressor: { } compressor } ? compressor.Residual : [];
        if (context.World.Allreduce(residual.Length, ReduceOp.Max) == 0)
        {
            return null;
        }

        if (residual.Length != stage.Parameters.Length)
        {
            throw new InvalidOperationException($"internal: stage {grid.Stage}'s residual has {residual.Length} values for {stage.Parameters.Length} parameters");
        }

        const int tag = 2;
        if (!grid.IsFirstStage)
        {
            grid.Pipeline.Send(residual, 0, tag);
            return null;
        }

        var total = checked((int)layout.ParametersPerStage.Sum());
        var replica = new float[total];
        residual.CopyTo(replica);
        var offset = residual.Length;
        for (var s = 1; s < grid.Stages; s++)
        {
            var part = replica.AsSpan(offset, (int)layout.ParametersPerStage[s]);
            grid.Pipeline.Recv(part, s, tag);
            offset += part.Length;
        }

        var all = context.World.Rank == 0 ? new float[total * grid.ReplicaCount] : [];
        grid.Replicas.Gather<float>(replica, all, 0);
        return context.World.Rank == 0 ? all : null;
    }

    /// <summary>Each stage takes its layers' parameters and optimizer state: a checkpoint of any S x D grid loads.</summary>
    public void Restore(Checkpoint checkpoint, string path)
    {
        var header = checkpoint.Header;
        CheckpointStore.CheckModel(header, path, context.Options.Model, modelLayers);
        // Residuals are per replica, stored per layer: any stage count takes them, another replica count cannot.
        var residuals = checkpoint.Has(Checkpoint.LayerName(ResidualName(0), 0));
        if (residuals && header.Replicas != grid.ReplicaCount)
        {
            throw new InputException($"{TrainFlags.Resume}: {path} holds each of its {header.Replicas} replicas' own --compress " +
                $"{context.Options.Compress} error-feedback residual, which cannot be shared exactly among D = {grid.ReplicaCount}; " +
                $"resume it with {header.Replicas} data-parallel replicas (--data-parallel {header.Replicas})");
        }

        checkpoint.GetLayers("parameters", range.Start, range.Count).CopyTo(stage.Parameters);
        stage.PushParameters();
        float[] state = [.. Enumerable.Range(0, header.OptimizerTensors).SelectMany(k => checkpoint.GetLayers($"optimizer {k}", range.Start, range.Count))];
        optimizer.ImportState(new OptimizerState(header.OptimizerTensors, header.OptimizerStepCount, state));
        if (residuals)
        {
            (exchange as ICompressingExchange)?.Compressor?.RestoreResidual(checkpoint.GetLayers(ResidualName(grid.Replica), range.Start, range.Count));
        }

        if (exchange is ICompressingExchange compressed)
        {
            compressed.Round = header.Step;
        }
    }

    public void Finish()
    {
        if (context.Options.TracePath is { } path)
        {
            WriteTrace(context.World, trace, path);
        }

        grid.Free();
    }

    public void Dispose()
    {
        optimizer.Dispose();
        stage.Dispose();
    }

    /// <summary>The pipeline's own checks: the grid, micro-batches that cut each replica's batch evenly, the balance's form.</summary>
    private static void Check(TrainOptions options, int workers)
    {
        var (stages, replicas) = options.GridShape(workers);
        var batch = options.Batch;
        if (batch % replicas != 0)
        {
            throw new InputException($"--batch {batch} is the global mini-batch and must be divisible by the D = {replicas} data-parallel replicas; try --batch {(batch / replicas + 1) * replicas}");
        }

        var m = options.EffectiveMicroBatches;
        TrainFlags.RequireAtLeast(TrainFlags.MicroBatches, m);

        var perReplica = batch / replicas;
        if (perReplica % m != 0)
        {
            throw new InputException($"--micro-batches {m} does not divide the per-replica batch {perReplica} (--batch {batch} / D = {replicas}): " +
                $"each mini-batch is cut into M equal micro-batches; try --batch {(perReplica / m + 1) * m * replicas} or --micro-batches that divides {perReplica}");
        }

        if (options.Balance is { } balance)
        {
            var counts = Partition.ParseBalance(balance);
            if (counts.Length != stages)
            {
                throw new InputException($"--balance {balance} gives {counts.Length} stages but the pipeline has S = {stages}: give one layer count per stage");
            }

            if (options.PartitionBy is not null)
            {
                throw new InputException("--balance gives the partition explicitly; --partition chooses the automatic one: use one of them");
            }
        }
    }

    /// <summary>Parses <see cref="ThrowAtVariable"/>: "rank:step", or nothing.</summary>
    internal static (int Rank, long Step)? ParseThrowAt(string? text) => RankStepVariable.Parse(ThrowAtVariable, text, "2:3");

    /// <summary>
    /// Replica 0's stages send their part of a flat buffer to stage 0 (world rank 0), which gets the whole model's
    /// buffer (null elsewhere): the stages' flat buffers in stage order are the single-rank model's. Other replicas
    /// hold the same.
    /// </summary>
    private float[]? GatherToRoot(ReadOnlySpan<float> local)
    {
        if (grid.Replica != 0)
        {
            return null;
        }

        const int tag = 1;
        if (!grid.IsFirstStage)
        {
            grid.Pipeline.Send(local, 0, tag);
            return null;
        }

        var whole = new float[layout.ParametersPerStage.Sum()];
        local.CopyTo(whole);
        var offset = local.Length;
        for (var s = 1; s < grid.Stages; s++)
        {
            var part = whole.AsSpan(offset, (int)layout.ParametersPerStage[s]);
            grid.Pipeline.Recv(part, s, tag);
            offset += part.Length;
        }

        return whole;
    }

    /// <summary>Every rank's trace to every rank (lengths, then Allgatherv of the UTF-8 text); rank 0 writes the merged file.</summary>
    internal static void WriteTrace(Communicator world, ChromeTrace trace, string path)
    {
        var mine = Encoding.UTF8.GetBytes(trace.Serialize());
        var lengths = new int[world.Size];
        world.Allgather<int>([mine.Length], lengths);
        var displacements = new int[world.Size];
        for (var r = 1; r < world.Size; r++)
        {
            displacements[r] = checked(displacements[r - 1] + lengths[r - 1]);
        }

        var all = new byte[checked(displacements[^1] + lengths[^1])];
        world.Allgatherv<byte>(mine, all, lengths, displacements);
        if (world.Rank == 0)
        {
            var texts = Enumerable.Range(0, world.Size).Select(r => Encoding.UTF8.GetString(all, displacements[r], lengths[r]));
            ChromeTrace.WriteMerged(path, texts);
        }
    }

    public PipelineSummary Summary()
    {
        if (context.Options.TracePath is { } tracePath)
        {
            notes.Add($"Chrome trace written to {tracePath} (open it in chrome://tracing or ui.perfetto.dev)");
        }

        var world = context.World;
        var stages = grid.Stages;
        var m = schedule.MicroBatches;
        var s = grid.Stage;
        var steps = Math.Max(1, measured.Steps);

        // Per-stage figures: each rank fills its stage's entry; sums over the world divided by D are replica means.
        var perStage = new double[4 * stages];
        perStage[s] = measured.ForwardSeconds / (steps * m);
        perStage[stages + s] = measured.BackwardSeconds / (steps * m);
        perStage[2 * stages + s] = bubbleSum / steps;
        perStage[3 * stages + s] = measured.ReceiveWaitSeconds / steps;
        world.Allreduce<double>(perStage, ReduceOp.Sum);
        for (var k = 0; k < perStage.Length; k++)
        {
            perStage[k] /= grid.ReplicaCount;
        }

        var peaks = new int[stages];
        peaks[s] = executor.PeakLiveSlots;
        world.Allreduce<int>(peaks, ReduceOp.Max);
        var bytes = new long[stages];
        bytes[s] = measured.PointToPointBytes / steps;
        world.Allreduce<long>(bytes, ReduceOp.Max);

        // The slowest rank's time for each mini-batch; the median over the mini-batches after the first.
        world.Allreduce<double>(stepSeconds, ReduceOp.Max);
        var median = SampleStatistics.Median(stepSeconds.Length > 1 ? stepSeconds.AsSpan(1) : stepSeconds);

        var forward = perStage[..stages];
        var backward = perStage[stages..(2 * stages)];
        return new PipelineSummary(
            Schedule: layout.Schedule,
            Stages: stages,
            Replicas: grid.ReplicaCount,
            MicroBatches: m,
            MicroBatchSize: layout.MicroBatchSize,
            Partition: layout.Partition,
            Balance: layout.Balance,
            LayerSeconds: layerSeconds,
            ParametersPerStage: layout.ParametersPerStage,
            PeakActivationsPerStage: peaks,
            ScheduledPeakActivationsPerStage: [.. Enumerable.Range(0, stages).Select(k => Schedule.PeakInFlight(schedule[k]))],
            ForwardSecondsPerMicroBatch: forward,
            BackwardSecondsPerMicroBatch: backward,
            SecondsPerMiniBatch: median,
            IdealSecondsPerMiniBatch: PipelineTiming.IdealTime(m, forward, backward),
            SimulatedSecondsPerMiniBatch: PipelineTiming.SimulatedTime(schedule, forward, backward),
            BubbleFraction: PipelineTiming.BubbleFraction(stages, m),
            MeasuredBubblePerStage: perStage[(2 * stages)..(3 * stages)],
            ReceiveWaitSecondsPerStage: perStage[(3 * stages)..],
            PointToPointBytesPerMiniBatch: bytes);
    }
}
