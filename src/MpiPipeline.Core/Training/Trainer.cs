using System.Diagnostics;
using MpiPipeline.Data;
using MpiPipeline.DataParallel;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>What a run is about to do, for the reporter's header. <see cref="Pipeline"/> only for --algo pipeline.</summary>
internal sealed record TrainingPlan(
    TrainOptions Options, int Workers, int TrainSamples, int TestSamples, long StepsPerEpoch, long TotalSteps,
    long Parameters, int ThreadsPerRank, string Split, PipelinePlan? Pipeline = null);

/// <summary>A pipeline's grid and partition, for the reporter's header.</summary>
/// <param name="StageLayers">Per stage, its layers as text (e.g. "[0, 3) flatten, linear 784 256, relu").</param>
internal sealed record PipelinePlan(
    string Schedule, int Stages, int Replicas, int MicroBatches, int MicroBatchSize, string Partition,
    IReadOnlyList<int> Balance, IReadOnlyList<long> ParametersPerStage, IReadOnlyList<string> StageLayers);

/// <summary>Progress and results; only rank 0 of the run receives calls. Core never prints: the CLI renders.</summary>
internal interface ITrainingReporter
{
    void Started(TrainingPlan plan);

    void StepCompleted(int epoch, long stepInEpoch, long stepsPerEpoch, float loss);

    void EpochCompleted(EpochRecord record);

    void Notice(string message);

    void Completed(RunResult result);
}

/// <summary>
/// The data-parallel training loop shared by every algorithm: data, replicas, epochs, evaluation of the (average)
/// model, counters and results. What happens inside a step is the algorithm's (<see cref="IDataParallelAlgorithm"/>).
/// </summary>
internal static class Trainer
{
    private const int EvaluationBatch = 1000;

    /// <summary>Runs on every rank; returns the result on every surviving rank (null on a rank that left).</summary>
    public static RunResult? Run(Communicator world, TrainOptions options, ITrainingReporter? reporter)
    {
        var wall = Stopwatch.StartNew();
        options.Validate(world.Size);
        options = options with { Device = DeviceSelection.ForRank(world, options.Device) };
        var isRoot = world.Rank == 0;
        reporter = isRoot ? reporter : null;

        var node = NodeShare.Measure(world);
        var threads = options.Threads ?? node.ThreadsPerRank;
        TorchRuntime.Threads = threads;
        var (train, test) = LoadData(options);
        var (stepsPerEpoch, totalSteps) = CountSteps(options, train.Count);
        var perWorkerBatch = options.Batch / world.Size;
        IBatchSampler sampler = options.EffectiveSplit == DataSplit.Chunks
            ? new ChunkSampler(train.Count, world.Size, options.Redundancy, world.Rank, options.Seed, perWorkerBatch)
            : new ShuffleSampler(train.Count, options.Seed, options.Batch, world.Rank, world.Size);

        using var worker = new Worker(options, world, train, sampler) { AllreduceWait = node.AllreduceWait };
        var algorithm = IDataParallelAlgorithm.Create(options);
        var initialSpread = ReplicaSpread(worker);
        worker.BroadcastParameters();
        reporter?.Started(new TrainingPlan(options, world.Size, train.Count, test.Count, stepsPerEpoch, totalSteps,
            worker.Stage.ParameterCount, threads, options.EffectiveSplit.ToString().ToLowerInvariant()));
        var oversubscribed = node.OversubscribedNote("the averaging Allreduce is an MPI_Iallreduce polled with sched_yield, so that "
            + "a rank that arrives early leaves its core to the ranks still computing", wholeJob: true);
        if (oversubscribed is not null)
        {
            reporter?.Notice(oversubscribed);
        }

        var epochs = new List<EpochRecord>();
        var curve = new List<LossPoint>();
        var curveLoss = 0.0;
        var curveCount = 0;
        var notesShown = 0;
        var epochsRun = (int)((totalSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        for (var epoch = 0; epoch < epochsRun && !algorithm.Stopped; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var trainTally = new LossTally();
            var first = (long)epoch * stepsPerEpoch;
            var last = Math.Min(first + stepsPerEpoch, totalSteps);
            for (var t = first; t < last; t++)
            {
                var stepClock = Stopwatch.StartNew();
                var result = algorithm.Step(t, worker);
                worker.Stats.StepSeconds += stepClock.Elapsed.TotalSeconds;
                if (algorithm.Stopped)
                {
                    break;
                }

                trainTally.Add(result.Loss, result.Correct, result.Count);
                curveLoss += result.Loss;
                curveCount++;
                if ((t + 1) % options.CurveEvery == 0 || t + 1 == totalSteps)
                {
                    curve.Add(new LossPoint(t + 1, worker.Stats.CommunicationRounds, wall.Elapsed.TotalSeconds, curveLoss / curveCount));
                    curveLoss = 0;
                    curveCount = 0;
                }

                if (t == 0 && options.FirstGradientsPath is { } gradientsPath && isRoot)
                {
                    worker.Stage.PullGradients();
                    WriteParameters(gradientsPath, worker.Stage.Gradients);
                }

                reporter?.StepCompleted(epoch, t - first + 1, last - first, result.Loss);
            }

            if (algorithm.Stopped)
            {
                break;
            }

            foreach (var note in algorithm.Notes.Skip(notesShown))
            {
                reporter?.Notice(note);
            }

            notesShown = algorithm.Notes.Count;
            if (last == totalSteps)
            {
                algorithm.Finish(worker);
            }

            trainTally.Allreduce(worker.Group);
            var testFigures = options.EvaluateEachEpoch || last == totalSteps
                ? Evaluate(worker, algorithm, test)
                : (double.NaN, double.NaN);
            var record = Record(epoch, trainTally, testFigures, epochClock.Elapsed.TotalSeconds, worker.Stats.CommunicationRounds,
                (long)worker.Stats.EstimatedBytesSent, worker.Stats.ComputeSeconds, worker.Stats.CommunicationSeconds);
            epochs.Add(record);
            reporter?.EpochCompleted(record);
        }

        if (algorithm.Stopped)
        {
            return null;
        }

        var finalSpread = ReplicaSpread(worker);
        var totals = worker.Stats.ReduceTotals(worker.Group);
        var run = new RunResult(
            Algorithm: algorithm.Name,
            Model: options.Model,
            Ranks: world.Size,
            Options: DescribeOptions(options, threads, stepsPerEpoch, totalSteps),
            Epochs: epochs,
            Totals: totals,
            FinalTestAccuracy: epochs.Count > 0 ? epochs[^1].TestAccuracy : double.NaN,
            WallSeconds: wall.Elapsed.TotalSeconds,
            LossCurve: curve,
            Notes: [.. oversubscribed is null ? [] : new[] { oversubscribed }, .. algorithm.Notes],
            InitialReplicaSpread: initialSpread,
            FinalReplicaSpread: finalSpread);

        if (options.ParametersPath is { } parametersPath && world.Rank == 0)
        {
            worker.Stage.PullParameters();
            WriteParameters(parametersPath, worker.Stage.Parameters);
        }

        if (isRoot && options.OutputPath is { } output)
        {
            ResultsJson.Write(output, run);
        }

        reporter?.Completed(run);
        if (!worker.Group.IsPredefined)
        {
            worker.ReplaceGroup(null);
        }

        return run;
    }

    /// <summary>The training and test sets, cut to --train-samples / --test-samples; every rank loads them the same way.</summary>
    internal static (Dataset Train, Dataset Test) LoadData(TrainOptions options)
    {
        var train = FashionMnist.Load(options.DataDirectory, train: true);
        var test = FashionMnist.Load(options.DataDirectory, train: false);
        if (options.TrainSamples is int trainLimit && trainLimit < train.Count)
        {
            train = train.Take(trainLimit);
        }

        if (options.TestSamples is int testLimit && testLimit < test.Count)
        {
            test = test.Take(testLimit);
        }

        return (train, test);
    }

    /// <summary>Steps per epoch (the last partial global batch dropped) and in the whole run.</summary>
    internal static (int StepsPerEpoch, long TotalSteps) CountSteps(TrainOptions options, int trainSamples)
    {
        var stepsPerEpoch = trainSamples / options.Batch;
        if (stepsPerEpoch < 1)
        {
            throw new InputException($"--batch {options.Batch} is larger than the {trainSamples} training samples");
        }

        return (stepsPerEpoch, Math.Min((long)stepsPerEpoch * options.Epochs, options.MaxSteps ?? long.MaxValue));
    }

    /// <summary>Test loss and accuracy of the average model, the test set split over the group's ranks.</summary>
    private static (double Loss, double Accuracy) Evaluate(Worker worker, IDataParallelAlgorithm algorithm, Dataset test)
    {
        var clock = Stopwatch.StartNew();
        var stage = worker.Stage;
        float[]? saved = null;
        if (!algorithm.ReplicasIdentical)
        {
            var average = worker.AverageModelCopy();
            saved = stage.Parameters.ToArray();
            average.CopyTo(stage.Parameters);
            stage.PushParameters();
        }

        var group = worker.Group;
        var (start, end) = LossTally.Share(test.Count, group.Rank, group.Size);
        var images = new float[EvaluationBatch * test.SampleSize];
        var labels = new int[EvaluationBatch];
        var indices = new int[EvaluationBatch];
        var tally = new LossTally();
        stage.Training = false;
        for (var at = start; at < end; at += EvaluationBatch)
        {
            var count = Math.Min(EvaluationBatch, end - at);
            for (var i = 0; i < count; i++)
            {
                indices[i] = at + i;
            }

            test.CopyBatch(indices.AsSpan(0, count), images.AsSpan(0, count * test.SampleSize), labels.AsSpan(0, count));
            var result = stage.Evaluate(images.AsSpan(0, count * test.SampleSize), count, labels.AsSpan(0, count));
            tally.Add(result.Loss, result.Correct, result.Count);
        }

        stage.Training = true;
        tally.Allreduce(group);
        if (saved is not null)
        {
            saved.CopyTo(stage.Parameters);
            stage.PushParameters();
        }

        worker.Stats.EvaluationSeconds += clock.Elapsed.TotalSeconds;
        return tally.Means();
    }

    /// <summary>An epoch's record from its (already reduced) training tally and test figures.</summary>
    internal static EpochRecord Record(int epoch, LossTally train, (double Loss, double Accuracy) test, double seconds,
        long communicationRounds, long bytesSentPerRank, double computeSeconds, double communicationSeconds)
    {
        var (trainLoss, trainAccuracy) = train.Means();
        return new EpochRecord(
            Epoch: epoch + 1,
            TrainLoss: trainLoss,
            TrainAccuracy: trainAccuracy,
            TestLoss: test.Loss,
            TestAccuracy: test.Accuracy,
            SamplesPerSecond: train.Samples / seconds,
            Seconds: seconds,
            CommunicationRounds: communicationRounds,
            BytesSentPerRank: bytesSentPerRank,
            ComputeSeconds: computeSeconds,
            CommunicationSeconds: communicationSeconds);
    }

    /// <summary>max over parameters of (max over replicas - min over replicas): 0 when every replica is identical.</summary>
    internal static double ReplicaSpread(Worker worker)
    {
        worker.Stage.PullParameters();
        var parameters = worker.Stage.Parameters;
        var high = parameters.ToArray();
        var low = parameters.ToArray();
        worker.Group.Allreduce<float>(high, ReduceOp.Max);
        worker.Group.Allreduce<float>(low, ReduceOp.Min);
        var spread = 0.0;
        for (var i = 0; i < high.Length; i++)
        {
            spread = Math.Max(spread, (double)high[i] - low[i]);
        }

        return spread;
    }

    internal static Dictionary<string, string> DescribeOptions(TrainOptions o, int threads, long stepsPerEpoch, long totalSteps) => new()
    {
        ["batch"] = o.Batch.ToString(),
        ["lr"] = o.LearningRate.ToString("R"),
        ["optimizer"] = o.Optimizer.ToString().ToLowerInvariant(),
        ["momentum"] = o.Momentum.ToString("R"),
        ["nesterov"] = o.Nesterov.ToString().ToLowerInvariant(),
        ["weightDecay"] = o.WeightDecay.ToString("R"),
        ["tau"] = o.Tau.ToString(),
        ["redundancy"] = o.Redundancy.ToString(),
        ["split"] = o.EffectiveSplit.ToString().ToLowerInvariant(),
        ["seed"] = o.Seed.ToString(),
        ["threadsPerRank"] = threads.ToString(),
        ["device"] = o.Device,
        ["stepsPerEpoch"] = stepsPerEpoch.ToString(),
        ["totalSteps"] = totalSteps.ToString(),
        ["failRank"] = o.FailRank?.ToString() ?? "",
        ["failStep"] = o.FailStep?.ToString() ?? "",
    };

    internal static void WriteParameters(string path, ReadOnlySpan<float> parameters)
    {
        var temporary = path + ".tmp";
        using (var file = File.Create(temporary))
        {
            file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(parameters));
        }

        File.Move(temporary, path, overwrite: true);
    }
}
