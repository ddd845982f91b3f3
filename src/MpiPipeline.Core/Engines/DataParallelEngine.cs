using System.Diagnostics;
using MpiPipeline.Algorithms;
using MpiPipeline.Data;
using MpiPipeline.DataParallel;
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

    private readonly TrainingContext context;
    private readonly IDataParallelAlgorithm algorithm;
    private readonly Worker worker;
    private readonly List<string> engineNotes = [];

    public DataParallelEngine(TrainingContext context, IDataParallelAlgorithm algorithm)
    {
        this.context = context;
        this.algorithm = algorithm;
        var (options, world, train) = (context.Options, context.World, context.Train);
        var perWorkerBatch = options.Batch / world.Size;
        IBatchSampler sampler = options.EffectiveSplit == DataSplit.Chunks
            ? new ChunkSampler(train.Count, world.Size, options.Redundancy, world.Rank, options.Seed, perWorkerBatch)
            : new ShuffleSampler(train.Count, options.Seed, options.Batch, world.Rank, world.Size);
        worker = new Worker(options, world, train, sampler, context.Node.AllreduceWait, context.Guard);
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

    public IReadOnlyList<string> Notes => [.. engineNotes, .. algorithm.Notes];

    public bool Stopped => algorithm.Stopped;

    public bool RootSeesBatchLoss => true;

    public long CommunicationRounds => worker.Exchange.Counters.Rounds;

    public double Start()
    {
        var spread = ReplicaSpread();
        worker.BroadcastParameters();
        return spread;
    }

    public LossResult Step(long t)
    {
        var clock = Stopwatch.StartNew();
        var result = algorithm.Step(t, worker);
        worker.Stats += new StepCounters { StepSeconds = clock.Elapsed.TotalSeconds };
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

    public void Finish()
    {
        if (!worker.Group.IsPredefined)
        {
            worker.ReplaceGroup(null);
        }
    }

    public void Dispose() => worker.Dispose();
}
