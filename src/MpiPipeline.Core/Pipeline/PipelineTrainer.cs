using System.Diagnostics;
using System.Globalization;
using System.Text;
using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Pipeline;

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
/// parameters). The loop, evaluation and reporting follow <see cref="Trainer"/>'s.
/// <para>
/// Data: every rank loads the data set itself (the same files, the same deterministic order), so no sample ever
/// travels between ranks: the first stage copies its micro-batches' images, the last stage their labels, the middle
/// stages neither. Evaluation pushes the test set through the pipeline without graphs (<see cref="Stage.Infer"/>),
/// each replica a share of it; the last stages count the loss and the correct answers.
/// </para>
/// </summary>
internal static class PipelineTrainer
{
    /// <summary>The no-hang tests' hook: "rank:step" makes that world rank throw in mid-pipeline at that step.</summary>
    public const string ThrowAtVariable = "MPIPIPE_TEST_THROW_AT";

    /// <summary>Samples per evaluation message: a cnn's first activations are 50 KB per sample.</summary>
    private const int EvaluationBatch = 200;

    public static RunResult Run(Communicator world, TrainOptions options, ITrainingReporter? reporter)
    {
        var wall = Stopwatch.StartNew();
        options.Validate(world.Size);
        options = options with { Device = DeviceSelection.ForRank(world, options.Device) };
        var (stages, replicas) = options.GridShape(world.Size);
        var microBatches = options.EffectiveMicroBatches;
        var isRoot = world.Rank == 0;
        reporter = isRoot ? reporter : null;
        var throwAt = ParseThrowAt(Environment.GetEnvironmentVariable(ThrowAtVariable));

        var node = NodeShare.Measure(world);
        var threads = options.Threads ?? node.ThreadsPerRank;
        TorchRuntime.Threads = threads;
        var layers = ModelZoo.Build(options.Model);
        if (stages > layers.Count)
        {
            throw new InputException(
                $"--stages {stages}: the model '{options.Model}' has only {layers.Count} layers and every stage needs at least one; use at most {layers.Count} stages");
        }

        var balance = options.Balance is { } text ? Partition.ParseBalance(text) : null;
        if (balance is not null)
        {
            Partition.ByBalance(layers.Count, balance); // a bad balance is reported before any work
        }

        var (train, test) = Trainer.LoadData(options);
        var (stepsPerEpoch, totalSteps) = Trainer.CountSteps(options, train.Count);
        var microBatchSize = options.Batch / replicas / microBatches;

        var grid = PipelineGrid.Create(world, stages, replicas);
        var partitionName = balance is not null ? "balance" : options.EffectivePartitionBy.ToString().ToLowerInvariant();
        var measure = balance is null && options.EffectivePartitionBy == PartitionCost.Time;
        var profiles = StageBuilder.Profile(layers, train.SampleShape, measure ? microBatchSize : null);
        var layerSeconds = measure ? profiles.Select(p => p.Seconds).ToArray() : [];
        if (measure)
        {
            // Each rank measured; rank 0's numbers decide, so every rank cuts the model the same way.
            world.Bcast<double>(layerSeconds, 0);
        }

        var ranges = balance is not null ? Partition.ByBalance(layers.Count, balance)
            : Partition.ByCost(measure ? layerSeconds : profiles.Select(p => (double)p.Parameters).ToArray(), stages);
        var range = ranges[grid.Stage];
        var parametersPerStage = ranges.Select(r => profiles.Skip(r.Start).Take(r.Count).Sum(p => p.Parameters)).ToArray();

        using var stage = StageBuilder.Create(layers, profiles, train.SampleShape, range, options.Device, options.Seed);
        using var optimizer = options.Optimizer == OptimizerKind.Adam
            ? Optimizer.Adam(stage, options.LearningRate, weightDecay: options.WeightDecay)
            : Optimizer.Sgd(stage, options.LearningRate, options.Momentum, nesterov: options.Nesterov, weightDecay: options.WeightDecay);
        var schedule = Schedule.Create(options.EffectiveSchedule, stages, microBatches);
        var trace = new ChromeTrace(world.Rank, $"stage {grid.Stage}, replica {grid.Replica}");
        var executor = new PipelineExecutor(stage, schedule, grid.Stage, grid.Pipeline, microBatchSize, trace, node.PipelineWait);
        var sampler = new ShuffleSampler(train.Count, options.Seed, options.Batch, grid.Replica, replicas);
        var indices = new int[sampler.Batch];
        var images = grid.IsFirstStage ? new float[sampler.Batch * train.SampleSize] : [];
        var labels = grid.IsLastStage ? new int[sampler.Batch] : [];
        var unusedLabels = grid.IsFirstStage && !grid.IsLastStage ? new int[sampler.Batch] : [];
        var scheduleName = options.EffectiveSchedule == ScheduleKind.GPipe ? "gpipe" : "1f1b";

        reporter?.Started(new TrainingPlan(options, replicas, train.Count, test.Count, stepsPerEpoch, totalSteps,
            parametersPerStage.Sum(), threads, "shuffle",
            new PipelinePlan(scheduleName, stages, replicas, microBatches, microBatchSize, partitionName,
                Partition.ToBalance(ranges), parametersPerStage,
                [.. ranges.Select(r => $"{r} {string.Join(", ", layers.Skip(r.Start).Take(r.Count))}")])));
        List<string> notes = [];
        if (node.OversubscribedNote("stages that wait for a message sleep between polls so that they leave the cores to the stages that compute")
            is { } oversubscribed)
        {
            notes.Add(oversubscribed);
            reporter?.Notice(oversubscribed);
        }

        var initialSpread = ReplicaSpread(stage, grid, world);
        var stats = new TrainingStats();
        var stepSeconds = new double[totalSteps];
        var measuredSteps = 0;
        double forwardSeconds = 0, backwardSeconds = 0, bubbleSum = 0, receiveWaitSeconds = 0;
        long bytesSent = 0;
        var epochs = new List<EpochRecord>();
        var curve = new List<LossPoint>();
        double curveLoss = 0;
        var curveCount = 0;
        var lastLoss = float.NaN;
        var epochsRun = (int)((totalSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        world.Barrier();
        trace.ResetOrigin();
        for (var epoch = 0; epoch < epochsRun; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var trainTally = new LossTally();
            var first = (long)epoch * stepsPerEpoch;
            var last = Math.Min(first + stepsPerEpoch, totalSteps);
            for (var t = first; t < last; t++)
            {
                var stepStart = trace.Now();
                if (grid.IsFirstStage || grid.IsLastStage)
                {
                    sampler.Indices(t, indices);
                    if (grid.IsFirstStage)
                    {
                        train.CopyBatch(indices, images, grid.IsLastStage ? labels : unusedLabels);
                    }
                    else
                    {
                        for (var k = 0; k < indices.Length; k++)
                        {
                            labels[k] = train.Labels[indices[k]];
                        }
                    }
                }

                stats.DataSeconds += (trace.Now() - stepStart) * 1e-6;
                TorchRuntime.ManualSeed(Shuffle.SeedFor(options.Seed, world.Rank, t));
                stage.ZeroGradients();
                var before = Snapshot(executor.Counters);
                var runStart = trace.Now();
                int? failBeforeForward = throwAt is (var rank, var step) && rank == world.Rank && step == t ? microBatches / 2 : null;
                var result = executor.Run(images, labels, failBeforeForward);
                var runEnd = trace.Now();
                var spans = executor.Spans;
                stage.PullGradients();
                if (replicas > 1)
                {
                    // g_s = (1/D) sum_d g_s^(d): the replicas of stage s average their gradients (one Allreduce).
                    var start = trace.Now();
                    if (node.AllreduceWait is { } idle)
                    {
                        grid.Replicas.Allreduce(stage.Gradients, ReduceOp.Sum, idle);
                    }
                    else
                    {
                        grid.Replicas.Allreduce(stage.Gradients, ReduceOp.Sum);
                    }

                    Worker.Scale(stage.Gradients, 1f / replicas);
                    stage.PushGradients();
                    var end = trace.Now();
                    stats.CommunicationSeconds += (end - start) * 1e-6;
                    stats.CommunicationRounds++;
                    var bytes = (long)stage.ParameterCount * sizeof(float);
                    stats.AllreducePayloadBytes += bytes;
                    stats.EstimatedBytesSent += 2.0 * (replicas - 1) / replicas * bytes;
                    if (options.TracePath is not null)
                    {
                        trace.Add("allreduce", TraceCategory.Allreduce, start, end - start);
                    }
                }

                if (t == 0 && options.FirstGradientsPath is { } gradientsPath)
                {
                    GatherToRoot(stage.Gradients, grid, parametersPerStage, gradientsPath);
                }

                var optimizerStart = trace.Now();
                optimizer.Step();                  // theta_s <- theta_s - eta update(g_s)
                var stepEnd = trace.Now();
                if (options.TracePath is not null)
                {
                    foreach (var span in spans)
                    {
                        trace.Add(span);
                    }

                    trace.Add("optimizer", TraceCategory.Optimizer, optimizerStart, stepEnd - optimizerStart);
                }

                var after = executor.Counters;
                var computeSeconds = after.ForwardSeconds + after.BackwardSeconds - before.Forward - before.Backward;
                stats.ComputeSeconds += computeSeconds + (stepEnd - optimizerStart) * 1e-6;
                stats.CommunicationSeconds += after.ReceiveWaitSeconds + after.SendSeconds - before.ReceiveWait - before.Send;
                stats.StepSeconds += (stepEnd - stepStart) * 1e-6;
                stats.Steps++;
                stats.Samples += result.Count;
                stepSeconds[t] = (stepEnd - stepStart) * 1e-6;
                if (t > 0 || totalSteps == 1)
                {
                    // Figures of the steady state: the first mini-batch warms libtorch and MPI up.
                    measuredSteps++;
                    forwardSeconds += after.ForwardSeconds - before.Forward;
                    backwardSeconds += after.BackwardSeconds - before.Backward;
                    receiveWaitSeconds += after.ReceiveWaitSeconds - before.ReceiveWait;
                    bytesSent += after.BytesSent - before.BytesSent;
                    bubbleSum += runEnd > runStart ? ChromeTrace.MeasuredBubble(spans, runStart, runEnd) : 0;
                }

                trainTally.Add(result.Loss, result.Correct, result.Count);
                curveLoss += result.Count > 0 ? result.Loss : 0;
                curveCount++;
                if ((t + 1) % options.CurveEvery == 0 || t + 1 == totalSteps)
                {
                    // The loss lives on the last stages: one small Allreduce per curve point brings it to rank 0.
                    var mean = world.Allreduce(curveLoss, ReduceOp.Sum) / (replicas * curveCount);
                    curve.Add(new LossPoint(t + 1, stats.CommunicationRounds, wall.Elapsed.TotalSeconds, mean));
                    lastLoss = (float)mean;
                    curveLoss = 0;
                    curveCount = 0;
                }

                reporter?.StepCompleted(epoch, t - first + 1, last - first, lastLoss);
            }

            trainTally.Allreduce(world);
            var testFigures = options.EvaluateEachEpoch || last == totalSteps
                ? Evaluate(executor, grid, world, test, stats)
                : (double.NaN, double.NaN);
            var seconds = epochClock.Elapsed.TotalSeconds;
            var communication = new[] { (double)stats.EstimatedBytesSent + executor.Counters.BytesSent, stats.ComputeSeconds, stats.CommunicationSeconds };
            world.Allreduce<double>(communication, ReduceOp.Sum);
            var record = Trainer.Record(epoch, trainTally, testFigures, seconds, stats.CommunicationRounds,
                (long)(communication[0] / world.Size), communication[1] / world.Size, communication[2] / world.Size);
            epochs.Add(record);
            reporter?.EpochCompleted(record);
        }

        var finalSpread = ReplicaSpread(stage, grid, world);
        var summary = Summarize(world, grid, schedule, scheduleName, microBatchSize, partitionName, ranges, layerSeconds, parametersPerStage,
            executor.Counters, stepSeconds, measuredSteps, forwardSeconds, backwardSeconds, bubbleSum, receiveWaitSeconds, bytesSent);
        var totals = stats.ReduceTotals(world, executor.Counters.BytesSent);
        var describedOptions = Trainer.DescribeOptions(options, threads, stepsPerEpoch, totalSteps);
        describedOptions["schedule"] = scheduleName;
        describedOptions["stages"] = stages.ToString(CultureInfo.InvariantCulture);
        describedOptions["replicas"] = replicas.ToString(CultureInfo.InvariantCulture);
        describedOptions["microBatches"] = microBatches.ToString(CultureInfo.InvariantCulture);
        describedOptions["balance"] = string.Join(',', Partition.ToBalance(ranges));
        describedOptions["partition"] = partitionName;
        var run = new RunResult(
            Algorithm: "pipeline",
            Model: options.Model,
            Ranks: world.Size,
            Options: describedOptions,
            Epochs: epochs,
            Totals: totals,
            FinalTestAccuracy: epochs.Count > 0 ? epochs[^1].TestAccuracy : double.NaN,
            WallSeconds: wall.Elapsed.TotalSeconds,
            LossCurve: curve,
            Notes: options.TracePath is { } tracePath ? [.. notes, $"Chrome trace written to {tracePath} (open it in chrome://tracing or ui.perfetto.dev)"] : notes,
            InitialReplicaSpread: initialSpread,
            FinalReplicaSpread: finalSpread,
            Pipeline: summary);

        if (options.ParametersPath is { } parametersPath)
        {
            stage.PullParameters();
            GatherToRoot(stage.Parameters, grid, parametersPerStage, parametersPath);
        }

        if (options.TracePath is { } path)
        {
            WriteTrace(world, trace, path);
        }

        if (isRoot && options.OutputPath is { } output)
        {
            ResultsJson.Write(output, run);
        }

        reporter?.Completed(run);
        grid.Free();
        return run;
    }

    /// <summary>Parses <see cref="ThrowAtVariable"/>: "rank:step", or nothing.</summary>
    internal static (int Rank, long Step)? ParseThrowAt(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var parts = text.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rank)
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var step))
        {
            return (rank, step);
        }

        throw new InputException($"{ThrowAtVariable}='{text}' is not rank:step (e.g. 2:3)");
    }

    private readonly record struct CounterSnapshot(double Forward, double Backward, double ReceiveWait, double Send, long BytesSent);

    private static CounterSnapshot Snapshot(StageCounters c) =>
        new(c.ForwardSeconds, c.BackwardSeconds, c.ReceiveWaitSeconds, c.SendSeconds, c.BytesSent);

    /// <summary>Test loss and accuracy: each replica pushes its share of the test set through its pipeline.</summary>
    private static (double Loss, double Accuracy) Evaluate(PipelineExecutor executor, PipelineGrid grid, Communicator world, Dataset test, TrainingStats stats)
    {
        var clock = Stopwatch.StartNew();
        var (start, end) = LossTally.Share(test.Count, grid.Replica, grid.ReplicaCount);
        var images = grid.IsFirstStage ? new float[EvaluationBatch * test.SampleSize] : [];
        var labels = new int[EvaluationBatch];
        var indices = new int[EvaluationBatch];
        var tally = new LossTally();
        for (var at = start; at < end; at += EvaluationBatch)
        {
            var count = Math.Min(EvaluationBatch, end - at);
            for (var i = 0; i < count; i++)
            {
                indices[i] = at + i;
                labels[i] = test.Labels[at + i];
            }

            if (grid.IsFirstStage)
            {
                test.CopyBatch(indices.AsSpan(0, count), images.AsSpan(0, count * test.SampleSize), labels.AsSpan(0, count));
            }

            var result = executor.EvaluateBatch(grid.IsFirstStage ? images.AsSpan(0, count * test.SampleSize) : [],
                labels.AsSpan(0, count), count);
            tally.Add(result.Loss, result.Correct, result.Count);
        }

        tally.Allreduce(world);
        stats.EvaluationSeconds += clock.Elapsed.TotalSeconds;
        return tally.Means();
    }

    /// <summary>max over parameters of (max - min over the replicas of a stage), the maximum over stages.</summary>
    private static double ReplicaSpread(Stage stage, PipelineGrid grid, Communicator world)
    {
        var spread = 0.0;
        if (grid.ReplicaCount > 1)
        {
            stage.PullParameters();
            var high = stage.Parameters.ToArray();
            var low = stage.Parameters.ToArray();
            grid.Replicas.Allreduce<float>(high, ReduceOp.Max);
            grid.Replicas.Allreduce<float>(low, ReduceOp.Min);
            for (var i = 0; i < high.Length; i++)
            {
                spread = Math.Max(spread, (double)high[i] - low[i]);
            }
        }

        return world.Allreduce(spread, ReduceOp.Max);
    }

    /// <summary>
    /// Replica 0's stages send their part of a flat buffer to stage 0 (world rank 0), which writes the whole model's
    /// buffer: the stages' flat buffers in stage order are the single-rank model's. Other replicas hold the same.
    /// </summary>
    private static void GatherToRoot(ReadOnlySpan<float> local, PipelineGrid grid, IReadOnlyList<long> parametersPerStage, string path)
    {
        if (grid.Replica != 0)
        {
            return;
        }

        const int tag = 1;
        if (!grid.IsFirstStage)
        {
            grid.Pipeline.Send(local, 0, tag);
            return;
        }

        var whole = new float[parametersPerStage.Sum()];
        local.CopyTo(whole);
        var offset = local.Length;
        for (var s = 1; s < grid.Stages; s++)
        {
            var part = whole.AsSpan(offset, (int)parametersPerStage[s]);
            grid.Pipeline.Recv(part, s, tag);
            offset += part.Length;
        }

        Trainer.WriteParameters(path, whole);
    }

    /// <summary>Every rank's trace to every rank (lengths, then Allgatherv of the UTF-8 text); rank 0 writes the merged file.</summary>
    private static void WriteTrace(Communicator world, ChromeTrace trace, string path)
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

    private static PipelineSummary Summarize(Communicator world, PipelineGrid grid, Schedule schedule, string scheduleName, int microBatchSize,
        string partitionName, IReadOnlyList<LayerRange> ranges, double[] layerSeconds, long[] parametersPerStage, StageCounters counters,
        double[] stepSeconds, int measuredSteps, double forwardSeconds, double backwardSeconds, double bubbleSum, double receiveWaitSeconds, long bytesSent)
    {
        var stages = grid.Stages;
        var m = schedule.MicroBatches;
        var s = grid.Stage;
        var steps = Math.Max(1, measuredSteps);

        // Per-stage figures: each rank fills its stage's entry; sums over the world divided by D are replica means.
        var perStage = new double[4 * stages];
        perStage[s] = forwardSeconds / (steps * m);
        perStage[stages + s] = backwardSeconds / (steps * m);
        perStage[2 * stages + s] = bubbleSum / steps;
        perStage[3 * stages + s] = receiveWaitSeconds / steps;
        world.Allreduce<double>(perStage, ReduceOp.Sum);
        for (var k = 0; k < perStage.Length; k++)
        {
            perStage[k] /= grid.ReplicaCount;
        }

        var peaks = new int[stages];
        peaks[s] = counters.PeakLiveSlots;
        world.Allreduce<int>(peaks, ReduceOp.Max);
        var bytes = new long[stages];
        bytes[s] = bytesSent / steps;
        world.Allreduce<long>(bytes, ReduceOp.Max);

        // The slowest rank's time for each mini-batch; the median over the mini-batches after the first.
        world.Allreduce<double>(stepSeconds, ReduceOp.Max);
        var steady = stepSeconds.Length > 1 ? stepSeconds[1..] : stepSeconds;
        Array.Sort(steady);
        var median = steady.Length == 0 ? double.NaN
            : steady.Length % 2 == 1 ? steady[steady.Length / 2] : (steady[steady.Length / 2 - 1] + steady[steady.Length / 2]) / 2;

        var forward = perStage[..stages];
        var backward = perStage[stages..(2 * stages)];
        return new PipelineSummary(
            Schedule: scheduleName,
            Stages: stages,
            Replicas: grid.ReplicaCount,
            MicroBatches: m,
            MicroBatchSize: microBatchSize,
            Partition: partitionName,
            Balance: Partition.ToBalance(ranges),
            LayerSeconds: layerSeconds,
            ParametersPerStage: parametersPerStage,
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
