using System.Diagnostics;
using System.Runtime.InteropServices;
using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>What a run is about to do, for the reporter's header. <see cref="Pipeline"/> only for the pipeline engine.</summary>
/// <param name="WholeBatchPerWorker">True where each worker computes every gradient on the whole --batch (dasgd: one
/// update per gradient) rather than on its batch / workers share of a global step.</param>
internal sealed record TrainingPlan(
    TrainOptions Options, int Workers, int TrainSamples, int TestSamples, long StepsPerEpoch, long TotalSteps,
    long Parameters, int ThreadsPerRank, string Split, string Algorithm, PipelinePlan? Pipeline = null, bool WholeBatchPerWorker = false)
{
    /// <summary>Where the training samples came from and how they were normalized, for the header; set by the loop, not the engines.</summary>
    public string? DataNote { get; init; }
}

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
/// The one training loop: data, step counts, epochs, progress, the loss curve, evaluation, notes, the results and
/// their files, over an engine (<see cref="ITrainingEngine"/>) that does the steps. Runs on every rank; returns the
/// result on every rank that stayed in the run (null on a rank that left).
/// </summary>
internal static class TrainingLoop
{
    public static RunResult? Run(Communicator world, TrainOptions options, Func<TrainingContext, ITrainingEngine> createEngine,
        ITrainingReporter? reporter)
    {
        var wall = Stopwatch.StartNew();
        options.Validate(world.Size);
        if (world.Rank == 0)
        {
            // Rank 0 writes every output file: an unwritable one fails now, before the run, not after it.
            foreach (var (flag, path) in options.OutputFiles())
            {
                AtomicFile.CheckWritable(path, flag);
            }
        }

        options = options with { Device = DeviceSelection.ForRank(world, options.Device) };
        reporter = world.Rank == 0 ? reporter : null;
        var node = NodeShare.Measure(world);
        var threads = TorchRuntime.ChooseThreads(options.Threads, node.ThreadsPerRank);
        TorchRuntime.Threads = threads;
        var (train, test) = LoadData(options);
        var (stepsPerEpoch, totalSteps) = CountSteps(options, train.Count);
        var guard = NonFiniteGuard.For(options);
        var recorded = CheckpointStore.RecordedOptions(options, DescribeOptions(options, threads, stepsPerEpoch, totalSteps), train.Count);
        var killAt = CheckpointStore.ParseKillAt(Environment.GetEnvironmentVariable(CheckpointStore.KillAtVariable));
        var resumed = options.ResumePath is { } resumePath ? CheckpointStore.Load(world, resumePath) : default((Checkpoint Checkpoint, string Path)?);
        if (resumed is var (checkpoint, checkpointPath))
        {
            // Before the engine is built (a pipeline measures its layers): a checkpoint of other options fails at once.
            CheckpointStore.CheckOptions(checkpoint.Header, checkpointPath, recorded, totalSteps);
        }

        using var engine = CreateEngine(createEngine, new TrainingContext(world, options, node, threads, train, test, stepsPerEpoch, totalSteps, guard));

        var initialSpread = engine.Start();
        var startStep = 0L;
        var resumeNote = new List<string>();
        if (resumed is var (loaded, loadedPath))
        {
            engine.Restore(loaded, loadedPath);
            guard.Resume(loaded.Header.SkippedSteps);
            startStep = loaded.Header.Step;
            resumeNote.Add($"resumed from {loadedPath} after step {startStep} (saved by {loaded.Header.Workers} rank(s)); the epochs and the loss curve cover the steps run since");
        }

        reporter?.Started(engine.Plan with { DataNote = DataNote(train) });
        foreach (var note in resumeNote)
        {
            reporter?.Notice(note);
        }

        var notesShown = ShowNotes(engine, 0, reporter);
        var epochs = new List<EpochRecord>();
        var curve = new List<LossPoint>();
        var curveLoss = 0.0;
        var curveCount = 0;
        var lastCurveLoss = float.NaN;
        var trainLoss = new List<TrainLossPoint>();
        var epochsRun = (int)((totalSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        // A run resumed at its very end still ends its last epoch (the last averaging, the evaluation).
        for (var epoch = (int)Math.Min(startStep / stepsPerEpoch, epochsRun - 1); epoch < epochsRun && !engine.Stopped && guard.Diverged is null; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var trainTally = new LossTally();
            var first = (long)epoch * stepsPerEpoch;
            var last = Math.Min(first + stepsPerEpoch, totalSteps);
            for (var t = Math.Max(first, startStep); t < last; t++)
            {
                CheckpointStore.KillIfDue(world.Rank, t, killAt);
                var result = engine.Step(t);
                if (engine.Stopped || guard.Diverged is not null)
                {
                    break;
                }

                if (options.CheckpointDirectory is { } folder && options.EffectiveCheckpointEvery.IsDue(t, stepsPerEpoch))
                {
                    SaveCheckpoint(world, options, engine, guard, recorded, t + 1, folder, reporter);
                }

                // A skipped step's non-finite loss stays out of the figures (every rank agrees on which steps those are).
                if (!guard.Skipped(t))
                {
                    trainTally.Add(result.Loss, result.Correct, result.Count);
                    curveLoss += result.Count > 0 ? result.Loss : 0;
                    curveCount++;
                }

                if (((t + 1) % options.CurveEvery == 0 || t + 1 == totalSteps) && curveCount > 0)
                {
                    var mean = engine.CurveMean(curveLoss, curveCount);
                    var (compute, communication) = engine.OwnSeconds();
                    curve.Add(new LossPoint(t + 1, engine.CommunicationRounds, wall.Elapsed.TotalSeconds, mean, compute, communication));
                    lastCurveLoss = (float)mean;
                    curveLoss = 0;
                    curveCount = 0;
                }

                reporter?.StepCompleted(epoch, t - first + 1, last - first, engine.RootSeesBatchLoss ? result.Loss : lastCurveLoss);
                if (options.TrainLossEvery is int every && (t + 1) % every == 0 && t + 1 < totalSteps)
                {
                    AddTrainLoss(engine, t + 1, trainLoss);
                }
            }

            if (engine.Stopped || guard.Diverged is not null)
            {
                break;
            }

            notesShown = ShowNotes(engine, notesShown, reporter);
            if (last == totalSteps)
            {
                engine.EndTraining();
                if (options.TrainLossEvery is not null)
                {
                    AddTrainLoss(engine, totalSteps, trainLoss);
                }
            }

            engine.ReduceTally(trainTally);
            var testFigures = options.EvaluateEachEpoch || last == totalSteps ? engine.Evaluate() : (double.NaN, double.NaN);
            var record = Record(epoch, trainTally, testFigures, epochClock.Elapsed.TotalSeconds, engine.EpochCounters());
            epochs.Add(record);
            reporter?.EpochCompleted(record);
        }

        if (engine.Stopped)
        {
            return null;
        }

        if (guard.Diverged is { } diverged)
        {
            return Diverged(world, options, engine, guard, diverged, DescribeOptions(options, threads, stepsPerEpoch, totalSteps), epochs, curve, wall, reporter);
        }

        var finalSpread = engine.ReplicaSpread();
        var summary = engine.Summary();
        var totals = engine.Totals();
        var described = DescribeOptions(options, threads, stepsPerEpoch, totalSteps);
        engine.DescribeOptions(described);
        var run = new RunResult(
            Algorithm: engine.Algorithm,
            Model: options.Model,
            Ranks: world.Size,
            Options: described,
            Epochs: epochs,
            Totals: totals,
            FinalTestAccuracy: epochs.Count > 0 ? epochs[^1].TestAccuracy : double.NaN,
            WallSeconds: wall.Elapsed.TotalSeconds,
            LossCurve: curve,
            Notes: [.. resumeNote, .. engine.Notes, .. SkippedNote(guard)],
            InitialReplicaSpread: initialSpread,
            FinalReplicaSpread: finalSpread,
            Pipeline: summary,
            SkippedSteps: guard.SkippedSteps.Count > 0 ? [.. guard.SkippedSteps] : null,
            TrainLossCurve: options.TrainLossEvery is not null ? trainLoss : null);

        if (options.ParametersPath is { } parametersPath)
        {
            engine.SaveParameters(parametersPath);
        }

        engine.Finish();
        if (world.Rank == 0 && options.OutputPath is { } output)
        {
            ResultsJson.Write(output, run);
        }

        reporter?.Completed(run);
        return run;
    }

    /// <summary>
    /// The end of a diverged run, on every rank: the totals (collective), the results marked diverged, with the
    /// epochs completed before and no test figures, written where --output says; no parameters are saved (they are
    /// not finite). The engine's own files (a trace) are written as for a completed run.
    /// </summary>
    private static RunResult Diverged(Communicator world, TrainOptions options, ITrainingEngine engine, NonFiniteGuard guard, Divergence diverged,
        Dictionary<string, string> described, List<EpochRecord> epochs, List<LossPoint> curve, Stopwatch wall, ITrainingReporter? reporter)
    {
        var totals = engine.Totals();
        engine.DescribeOptions(described);
        var seen = diverged.Seen;
        var run = new RunResult(
            Algorithm: engine.Algorithm,
            Model: options.Model,
            Ranks: world.Size,
            Options: described,
            Epochs: epochs,
            Totals: totals,
            FinalTestAccuracy: null,
            WallSeconds: wall.Elapsed.TotalSeconds,
            LossCurve: curve,
            Notes: [.. engine.Notes],
            InitialReplicaSpread: double.NaN,
            FinalReplicaSpread: double.NaN,
            Status: RunStatus.Diverged,
            Divergence: new DivergenceReport(diverged.Step, seen.Rank, seen.Quantity, seen.Value, seen.Loss, seen.GradientNorm,
                diverged.SkippedSteps, diverged.Describe(options)),
            SkippedSteps: guard.SkippedSteps.Count > 0 ? [.. guard.SkippedSteps] : null);
        engine.Finish();
        if (world.Rank == 0 && options.OutputPath is { } output)
        {
            ResultsJson.Write(output, run);
        }

        reporter?.Completed(run);
        return run;
    }

    /// <summary>Collective: the engine's state after <paramref name="steps"/> steps, written by rank 0 (<see cref="CheckpointStore"/>).</summary>
    private static void SaveCheckpoint(Communicator world, TrainOptions options, ITrainingEngine engine, NonFiniteGuard guard,
        Dictionary<string, string> recorded, long steps, string folder, ITrainingReporter? reporter)
    {
        var header = new CheckpointHeader(steps, options.Algorithm, world.Size, 0, 0, options.Model, options.DataSet, [],
            options.Optimizer.ToString().ToLowerInvariant(), 0, 0, false, [.. guard.SkippedSteps], recorded);
        if (engine.Capture(header) is { } checkpoint)
        {
            var path = CheckpointStore.Save(folder, checkpoint, options.EffectiveCheckpointKeep);
            reporter?.Notice($"checkpoint after step {steps}: {path}");
        }
    }

    /// <summary>The (average) model's loss on the training set after <paramref name="step"/> steps (collective).</summary>
    private static void AddTrainLoss(ITrainingEngine engine, long step, List<TrainLossPoint> points)
    {
        if (engine.EvaluateTraining() is var (loss, accuracy))
        {
            points.Add(new TrainLossPoint(step, engine.CommunicationRounds, loss, accuracy));
        }
    }

    private static IEnumerable<string> SkippedNote(NonFiniteGuard guard) => guard.SkippedSteps.Count == 0 ? [] :
        [$"{guard.SkippedSteps.Count} step(s) skipped for a non-finite loss or gradient ({TrainFlags.OnNonFinite} skip-step): steps {string.Join(", ", guard.SkippedSteps)}"];

    private static int ShowNotes(ITrainingEngine engine, int shown, ITrainingReporter? reporter)
    {
        foreach (var note in engine.Notes.Skip(shown))
        {
            reporter?.Notice(note);
        }

        return engine.Notes.Count;
    }

    /// <summary>The training and test sets, cut to --train-samples / --test-samples; every rank loads them the same way.</summary>
    internal static (Dataset Train, Dataset Test) LoadData(TrainOptions options)
    {
        var train = DataSetRegistry.Load(options.DataSet, options.DataDirectory, train: true);
        var test = DataSetRegistry.Load(options.DataSet, options.DataDirectory, train: false);
        return (options.TrainSamples is int trainLimit ? train.Take(trainLimit) : train,
            options.TestSamples is int testLimit ? test.Take(testLimit) : test);
    }

    /// <summary>The engine, built for the data's geometry; a shape its model cannot take names the data's files too.</summary>
    private static ITrainingEngine CreateEngine(Func<TrainingContext, ITrainingEngine> createEngine, TrainingContext context)
    {
        try
        {
            return createEngine(context);
        }
        catch (SampleShapeException ex) when (context.Train.Source is { } source)
        {
            throw new InputException($"{ex.Message}; the samples come from {source} ({TrainFlags.DataSet} {context.Options.DataSet})");
        }
    }

    /// <summary>"from FILE; normalized ..." for the run header (null for generated data, which says nothing more).</summary>
    internal static string? DataNote(Dataset train) => train.Source is null && train.Normalization is null ? null
        : string.Join("; ", new[] { train.Source is { } source ? $"{SampleGeometry.Format(train.SampleShape)} samples in {train.Classes} classes from {source}" : null,
            train.Normalization is { } normalization ? $"normalized {normalization}" : null }.OfType<string>());

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

    /// <summary>An epoch's record from its (already reduced) training tally, test figures and counters.</summary>
    internal static EpochRecord Record(int epoch, LossTally train, (double Loss, double Accuracy) test, double seconds, EpochCounters counters)
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
            CommunicationRounds: counters.CommunicationRounds,
            BytesSentPerRank: counters.BytesSentPerRank,
            MpiPayloadBytesPerRank: counters.MpiPayloadBytesPerRank,
            ComputeSeconds: counters.ComputeSeconds,
            CommunicationSeconds: counters.CommunicationSeconds);
    }

    internal static Dictionary<string, string> DescribeOptions(TrainOptions o, int threads, long stepsPerEpoch, long totalSteps) => new()
    {
        ["dataset"] = o.DataSet,
        ["batch"] = o.Batch.ToString(),
        ["lr"] = o.LearningRate.ToString("R"),
        ["optimizer"] = o.Optimizer.ToString().ToLowerInvariant(),
        ["momentum"] = o.Momentum.ToString("R"),
        ["nesterov"] = o.Nesterov.ToString().ToLowerInvariant(),
        ["weightDecay"] = o.WeightDecay.ToString("R"),
        ["tau"] = o.Tau.ToString(),
        ["redundancy"] = o.Redundancy.ToString(),
        ["split"] = o.EffectiveSplit.Name(),
        ["seed"] = o.Seed.ToString(),
        ["threadsPerRank"] = threads.ToString(),
        ["device"] = o.Device,
        ["stepsPerEpoch"] = stepsPerEpoch.ToString(),
        ["totalSteps"] = totalSteps.ToString(),
        ["failRank"] = o.FailRank?.ToString() ?? "",
        ["failStep"] = o.FailStep?.ToString() ?? "",
        ["exchange"] = o.Exchange,
    };

    /// <summary>Raw little-endian float32, through a temporary file so that a failed write leaves no partial file.</summary>
    internal static void WriteParameters(string path, ReadOnlySpan<float> parameters) =>
        AtomicFile.WriteAllBytes(path, MemoryMarshal.AsBytes(parameters));

    /// <summary>The optimizer the options name, over a stage's flat buffers.</summary>
    internal static Optimizer CreateOptimizer(TrainOptions options, Stage stage) => options.Optimizer == OptimizerKind.Adam
        ? Optimizer.Adam(stage, options.LearningRate, weightDecay: options.WeightDecay)
        : Optimizer.Sgd(stage, options.LearningRate, options.Momentum, nesterov: options.Nesterov, weightDecay: options.WeightDecay);

    /// <summary>max over parameters of (max over <paramref name="group"/> - min over it) of this rank's parameters.</summary>
    internal static double ReplicaSpread(Stage stage, Communicator group)
    {
        stage.PullParameters();
        var high = stage.Parameters.ToArray();
        var low = stage.Parameters.ToArray();
        group.Allreduce<float>(high, ReduceOp.Max);
        group.Allreduce<float>(low, ReduceOp.Min);
        var spread = 0.0;
        for (var i = 0; i < high.Length; i++)
        {
            spread = Math.Max(spread, (double)high[i] - low[i]);
        }

        return spread;
    }
}
