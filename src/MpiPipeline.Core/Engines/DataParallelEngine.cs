using System.Diagnostics;
using MpiPipeline.Algorithms;
using MpiPipeline.Data;
using MpiPipeline.DataParallel;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Engines;

/// <summary>
/// Every rank a worker with a whole replica of the model (<see cref="Worker"/>), stepping with a data-parallel
/// algorithm (<see cref="IDataParallelAlgorithm"/>) and averaging through the worker's exchange. Evaluation runs on
/// the average model, the test set split over the workers.
/// </summary>
internal sealed class DataParallelEngine : ITrainingEngine
{
    private const int EvaluationBatch = 1000;

    /// <summary>--split: every data-parallel algorithm takes it.</summary>
    public static AlgorithmOption SplitOption { get; } = new(TrainFlags.Split, o => o.Split is not null);

    /// <summary>--no-overlap and --bucket-mb: the algorithms that average gradients every step take them.</summary>
    public static IReadOnlyList<AlgorithmOption> GradientOptions { get; } =
    [
        new(TrainFlags.NoOverlap, o => o.NoOverlap),
        new(TrainFlags.BucketMegabytes, o => o.BucketMegabytes is not null),
        new(TrainFlags.CudaAwareMpi, o => o.CudaAwareMpi),
    ];

    /// <summary>--compress: PSGD's gradients only (local SGD and RI-SGD average models, which stay exact).</summary>
    public static AlgorithmOption CompressOption { get; } = new(TrainFlags.Compress, o => !CompressorRegistry.IsNone(o.Compress));

    /// <summary>--trace: forward + backward, each gradient bucket's Allreduce and the optimizer step, one row per rank.</summary>
    public static AlgorithmOption TraceOption { get; } = new(TrainFlags.Trace, o => o.TracePath is not null);

    private readonly TrainingContext context;
    private readonly IDataParallelAlgorithm algorithm;
    private readonly Worker worker;
    private readonly List<string> engineNotes = [];
    private readonly ChromeTrace? trace;

    public DataParallelEngine(TrainingContext context, IDataParallelAlgorithm algorithm)
    {
        this.context = context;
        this.algorithm = algorithm;
        var (options, world, train) = (context.Options, context.World, context.Train);
        var perWorkerBatch = options.Batch / world.Size;
        IBatchSampler sampler = options.EffectiveSplit == DataSplit.Chunks
            ? new ChunkSampler(train.Count, world.Size, options.Redundancy, world.Rank, options.Seed, perWorkerBatch)
            : new ShuffleSampler(train.Count, options.Seed, options.Batch, world.Rank, world.Size);
        worker = new Worker(options, world, train, sampler, context.Node.AllreduceWait, algorithm.AveragesGradients, context.Guard);
        trace = options.TracePath is not null ? new ChromeTrace(world.Rank, $"worker {world.Rank}") : null;
        Plan = context.Plan(world.Size, worker.Stage.ParameterCount, options.EffectiveSplit.ToString().ToLowerInvariant(),
            AlgorithmRegistry.Find(options.Algorithm).Describe(options, world.Size));
        if (context.Node.OversubscribedNote("the averaging Allreduce is an MPI_Iallreduce polled with sched_yield, so that "
            + "a rank that arrives early leaves its core to the ranks still computing", wholeJob: true) is { } oversubscribed)
        {
            engineNotes.Add(oversubscribed);
        }
    }

    public string Algorithm => algorithm.Name;

    public TrainingPlan Plan { get; }

    public IReadOnlyList<string> Notes => [.. engineNotes, .. algorithm.Notes, .. GradientOverlap.Notes(worker.Overlapped, context.Options), .. GradientCompression.Notes(worker.Exchange), .. GradientStaging.Notes(worker.Staged)];

    public bool Stopped => algorithm.Stopped;

    public bool RootSeesBatchLoss => true;

    public long CommunicationRounds => worker.Exchange.Counters.Rounds;

    public double Start()
    {
        var spread = ReplicaSpread();
        worker.BroadcastParameters();
        if (trace is not null)
        {
            context.World.Barrier();
            trace.ResetOrigin();
        }

        return spread;
    }

    public LossResult Step(long t)
    {
        var clock = Stopwatch.StartNew();
        var result = algorithm.Step(t, worker);
        worker.Stats += new StepCounters { StepSeconds = clock.Elapsed.TotalSeconds };
        if (trace is not null && result.Count > 0)
        {
            AddTrace(trace);
        }

        if (t == 0 && !algorithm.Stopped && context.Guard.Diverged is null && context.Options.FirstGradientsPath is { } path && context.World.Rank == 0)
        {
            worker.Stage.PullGradients();
            TrainingLoop.WriteParameters(path, worker.Stage.Gradients);
        }

        return result;
    }

    public double CurveMean(double localSum, int count) => localSum / count;

    public void EndTraining() => algorithm.Finish(worker);

    public void ReduceTally(LossTally tally) => tally.Allreduce(worker.Group);

    /// <summary>Test loss and accuracy of the average model, the test set split over the group's ranks.</summary>
    public (double Loss, double Accuracy) Evaluate()
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
        stage.Training = false;
        var tally = LossTally.Evaluate(context.Test, group.Rank, group.Size, EvaluationBatch,
            (images, labels, count) => stage.Evaluate(images, count, labels));
        stage.Training = true;
        tally.Allreduce(group);
        if (saved is not null)
        {
            saved.CopyTo(stage.Parameters);
            stage.PushParameters();
        }

        worker.Stats += new StepCounters { EvaluationSeconds = clock.Elapsed.TotalSeconds };
        return tally.Means();
    }

    /// <summary>Rank 0's own counters (every worker does the same rounds).</summary>
    public EpochCounters EpochCounters() => worker.Stats.Epoch(worker.Exchange.Counters);

    public (double Compute, double Communication) OwnSeconds() =>
        (worker.Stats.ComputeSeconds, worker.Stats.CommunicationSeconds + worker.Exchange.Counters.Seconds);

    public double ReplicaSpread() => TrainingLoop.ReplicaSpread(worker.Stage, worker.Group);

    public RunTotals Totals() => worker.Stats.ReduceTotals(worker.Group, worker.Exchange.Counters);

    public void SaveParameters(string path)
    {
        if (context.World.Rank == 0)
        {
            worker.Stage.PullParameters();
            TrainingLoop.WriteParameters(path, worker.Stage.Parameters);
        }
    }

    public void DescribeOptions(IDictionary<string, string> options)
    {
        GradientOverlap.Describe(options, worker.Overlapped, context.Options);
        GradientCompression.Describe(options, worker.Exchange);
        GradientStaging.Describe(options, worker.Staged);
    }

    public void Finish()
    {
        if (context.Options.TracePath is { } path && trace is not null)
        {
            PipelineEngine.WriteTrace(context.World, trace, path);
        }

        if (!worker.Group.IsPredefined)
        {
            worker.ReplaceGroup(null);
        }
    }

    public void Dispose() => worker.Dispose();

    /// <summary>The step's spans: forward + backward, each bucket's Allreduce from its start to its completion as this
    /// rank saw it (overlapping the backward span when the overlap works), the optimizer step.</summary>
    private void AddTrace(ChromeTrace chrome)
    {
        var (fbStart, fbEnd) = worker.ForwardBackwardSpan;
        chrome.Add("forward+backward", TraceCategory.Backward, chrome.At(fbStart), chrome.At(fbEnd) - chrome.At(fbStart));
        if (worker.Overlapped is { } overlapped)
        {
            foreach (var bucket in overlapped.LastRound)
            {
                chrome.Add($"allreduce bucket {bucket.Bucket}", TraceCategory.Allreduce, chrome.At(bucket.StartTimestamp),
                    chrome.At(bucket.EndTimestamp) - chrome.At(bucket.StartTimestamp));
            }
        }

        var (optimizerStart, optimizerEnd) = worker.OptimizerSpan;
        chrome.Add("optimizer", TraceCategory.Optimizer, chrome.At(optimizerStart), chrome.At(optimizerEnd) - chrome.At(optimizerStart));
    }
}
