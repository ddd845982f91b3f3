using System.Diagnostics;
using MpiPipeline.Algorithms;
using MpiPipeline.Data;
using MpiPipeline.DataParallel;
using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Engines;

/// <summary>
/// Every rank a worker with a whole replica of the model (<see cref="Worker"/>), stepping with a data-parallel
/// algorithm (<see cref="IDataParallelAlgorithm"/>) and averaging through the worker's exchange. Evaluation runs on
/// the average model, the test set split over the workers, with the replicas' BatchNorm running statistics averaged
/// first (and kept averaged: <see cref="Worker.AverageBuffers"/>).
/// </summary>
internal sealed class DataParallelEngine : ITrainingEngine
{
    /// <summary>What <see cref="SaveParameters"/> appends to the path for the BatchNorm statistics' file.</summary>
    public const string BuffersSuffix = ".buffers";

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

    /// <summary>--compress: the algorithms that average gradients, PSGD and the pipeline's replicas (local SGD and RI-SGD
    /// average models, which stay exact).</summary>
    public static AlgorithmOption CompressOption { get; } = new(TrainFlags.Compress, o => !CompressorRegistry.IsNone(o.Compress));

    /// <summary>--train-loss-every: the engines whose model is one replica (or the average of the replicas) evaluate it on the training set.</summary>
    public static AlgorithmOption TrainLossOption { get; } = new(TrainFlags.TrainLossEvery, o => o.TrainLossEvery is not null);

    /// <summary>--trace: forward + backward, each gradient bucket's Allreduce and the optimizer step, one row per rank.</summary>
    public static AlgorithmOption TraceOption { get; } = new(TrainFlags.Trace, o => o.TracePath is not null);

    /// <summary>--slow-workers (psgd, dasgd): PSGD waits for the slowest worker every step, the comparison with DASGD.</summary>
    public static AlgorithmOption SlowWorkersOption { get; } = new(TrainFlags.SlowWorkers, o => o.SlowWorkers is not null);

    private readonly TrainingContext context;
    private readonly IDataParallelAlgorithm algorithm;
    private readonly Worker worker;
    private readonly List<string> engineNotes = [];
    private readonly ChromeTrace? trace;
    private Dataset? trainingSubset;

    public DataParallelEngine(TrainingContext context, IDataParallelAlgorithm algorithm)
    {
        this.context = context;
        this.algorithm = algorithm;
        var (options, world, train) = (context.Options, context.World, context.Train);
        var perWorkerBatch = options.Batch / world.Size;
        var order = options.EffectiveSplit == DataSplit.ChunksByClass ? RedundantChunks.ClassOrder(train.Labels) : null;
        IBatchSampler sampler = options.EffectiveSplit.IsChunked()
            ? new ChunkSampler(train.Count, world.Size, options.Redundancy, world.Rank, options.Seed, perWorkerBatch, order)
            : new ShuffleSampler(train.Count, options.Seed, options.Batch, world.Rank, world.Size);
        if (order is not null)
        {
            engineNotes.Add(ClassesNote(train.Labels, order, world.Size, options.Redundancy));
        }

        worker = new Worker(options, world, train, sampler, context.Node.AllreduceWait, algorithm.AveragesGradients, context.Guard);
        trace = options.TracePath is not null ? new ChromeTrace(world.Rank, $"worker {world.Rank}") : null;
        Plan = context.Plan(world.Size, worker.Stage.ParameterCount, options.EffectiveSplit.Name(),
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

    public void EndTraining()
    {
        algorithm.Finish(worker);
        worker.AverageBuffers();
    }

    public void ReduceTally(LossTally tally) => tally.Allreduce(worker.Group);

    /// <summary>Test loss and accuracy of the average model, the test set split over the group's ranks.</summary>
    public (double Loss, double Accuracy) Evaluate() => EvaluateOn(context.Test);

    /// <summary>Loss and accuracy of the average model on the training set (its first TrainLossSamples samples).</summary>
    public (double Loss, double Accuracy)? EvaluateTraining()
    {
        trainingSubset ??= context.Options.TrainLossSamples is int n && n < context.Train.Count ? context.Train.Take(n) : context.Train;
        return EvaluateOn(trainingSubset);
    }

    /// <summary>
    /// "--split chunks-by-class: chunk k holds classes ...; worker j holds ... (c classes)": how non-i.i.d. the
    /// placement is, in the run's notes.
    /// </summary>
    internal static string ClassesNote(IReadOnlyList<int> labels, IReadOnlyList<int> order, int p, int q)
    {
        var perChunk = RedundantChunks.ClassesPerChunk(labels, p, order);
        var perWorker = Enumerable.Range(0, p)
            .Select(j => RedundantChunks.ChunksOf(j, p, q).SelectMany(c => perChunk[c]).Distinct().Count()).ToArray();
        return $"--split chunks-by-class: the samples sorted by label, cut into {p} chunks holding classes " +
            string.Join("; ", perChunk.Select(c => "{" + string.Join(",", c) + "}")) +
            $"; with q = {q} the workers hold {string.Join(", ", perWorker)} classes of {labels.Distinct().Count()}";
    }

    private (double Loss, double Accuracy) EvaluateOn(Dataset data)
    {
        var clock = Stopwatch.StartNew();
        var stage = worker.Stage;
        worker.AverageBuffers();
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
        var tally = LossTally.Evaluate(data, group.Rank, group.Size, EvaluationBatch,
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

    /// <summary>The flat parameters at <paramref name="path"/>; a model with BatchNorm also its running statistics (averaged
    /// over the replicas at the end of training) at <paramref name="path"/>.buffers, raw float32 in layer order: without
    /// them the parameters alone do not evaluate as the run did.</summary>
    public void SaveParameters(string path)
    {
        if (context.World.Rank == 0)
        {
            worker.Stage.PullParameters();
            TrainingLoop.WriteParameters(path, worker.Stage.Parameters);
            if (worker.Stage.BufferLength > 0)
            {
                TrainingLoop.WriteParameters(path + BuffersSuffix, worker.Stage.GetBuffers());
            }
        }
    }

    /// <summary>
    /// The model (rank 0's replica) per layer; with an algorithm whose workers hold their own replicas between
    /// averagings (local SGD, RI-SGD: their momentum buffers are never averaged) every worker's parameters and optimizer
    /// state; with an error-feedback compressor (ECQ) every worker's residual.
    /// </summary>
    public Checkpoint? Capture(CheckpointHeader header)
    {
        var world = context.World;
        var root = world.Rank == 0;
        var stage = worker.Stage;
        stage.PullParameters();
        var state = worker.Optimizer.ExportState();
        var perWorker = !algorithm.AveragesGradients;
        float[] parameters = [], optimizerState = [], residuals = [];
        if (perWorker)
        {
            parameters = root ? new float[stage.Parameters.Length * world.Size] : [];
            world.Gather<float>(stage.Parameters, parameters, 0);
            optimizerState = root ? new float[state.Values.Length * world.Size] : [];
            world.Gather<float>(state.Values, optimizerState, 0);
        }

        // Each worker's own BatchNorm running statistics (no exchange averages them between evaluations), so that a
        // resumed run continues exactly; a resume at another worker count starts every worker from their mean.
        var ownBuffers = stage.GetBuffers();
        var buffers = root && ownBuffers.Length > 0 ? new float[ownBuffers.Length * world.Size] : [];
        if (ownBuffers.Length > 0)
        {
            world.Gather<float>(ownBuffers, buffers, 0);
        }

        ReadOnlySpan<float> residual = Compressor is { } compressor ? compressor.Residual : [];
        var residualLength = world.Allreduce(residual.Length, ReduceOp.Max);
        if (residualLength > 0)
        {
            if (residual.Length != residualLength)
            {
                throw new InvalidOperationException($"internal: worker {world.Rank}'s residual has {residual.Length} values, another's {residualLength}");
            }

            residuals = root ? new float[residualLength * world.Size] : [];
            world.Gather<float>(residual, residuals, 0);
        }

        if (!root)
        {
            return null;
        }

        var checkpoint = new Checkpoint(header with
        {
            Layers = ModelLayers(), OptimizerTensors = state.Tensors, OptimizerStepCount = state.StepCount, PerWorker = perWorker,
        });
        checkpoint.AddPerLayer("parameters", stage.Parameters);
        var n = stage.Parameters.Length;
        for (var k = 0; k < state.Tensors; k++)
        {
            checkpoint.AddPerLayer($"optimizer {k}", state.Values.AsSpan(k * n, n));
        }

        for (var r = 0; r < world.Size; r++)
        {
            if (perWorker)
            {
                checkpoint.Add($"worker {r}/parameters", parameters.AsSpan(r * n, n).ToArray());
                checkpoint.Add($"worker {r}/optimizer", optimizerState.AsSpan(r * state.Values.Length, state.Values.Length).ToArray());
            }

            if (residualLength > 0)
            {
                checkpoint.Add($"worker {r}/residual", residuals.AsSpan(r * residualLength, residualLength).ToArray());
            }

            if (ownBuffers.Length > 0)
            {
                checkpoint.Add($"worker {r}/buffers", buffers.AsSpan(r * ownBuffers.Length, ownBuffers.Length).ToArray());
            }
        }

        return checkpoint;
    }

    /// <summary>
    /// Replicated state (PSGD's parameters and optimizer state) loads at any worker count; per-worker state (local
    /// SGD's and RI-SGD's replicas, ECQ's residuals) only at the worker count that saved it: there is no exact way to
    /// share p workers' replicas or residuals among p' others, so another count is refused.
    /// </summary>
    public void Restore(Checkpoint checkpoint, string path)
    {
        var (world, header) = (context.World, checkpoint.Header);
        CheckpointStore.CheckModel(header, path, context.Options.Model, ModelLayers());
        var residual = checkpoint.Has("worker 0/residual");
        if ((header.PerWorker || residual) && header.Workers != world.Size)
        {
            var what = header.PerWorker ? $"--algo {header.Algorithm}'s replica and optimizer state" : $"--compress {context.Options.Compress}'s error-feedback residual";
            throw new InputException($"{TrainFlags.Resume}: {path} holds each worker's own {what} for {header.Workers} workers, which cannot be shared " +
                $"exactly among {world.Size}; resume it with {header.Workers} ranks (mpiexec -n {header.Workers})");
        }

        var stage = worker.Stage;
        var layers = header.Layers.Count;
        var parameters = header.PerWorker ? checkpoint.Get($"worker {world.Rank}/parameters") : checkpoint.GetLayers("parameters", 0, layers);
        var state = header.PerWorker ? checkpoint.Get($"worker {world.Rank}/optimizer")
            : [.. Enumerable.Range(0, header.OptimizerTensors).SelectMany(k => checkpoint.GetLayers($"optimizer {k}", 0, layers))];
        parameters.CopyTo(stage.Parameters);
        stage.PushParameters();
        worker.Optimizer.ImportState(new OptimizerState(header.OptimizerTensors, header.OptimizerStepCount, state));
        if (residual)
        {
            Compressor!.RestoreResidual(checkpoint.Get($"worker {world.Rank}/residual"));
        }

        if (worker.Exchange is ICompressingExchange compressed)
        {
            compressed.Round = header.Step;
        }

        RestoreBuffers(checkpoint, header.Workers, path);

        algorithm.Resumed(header.Step, worker);
    }

    /// <summary>This worker's own BatchNorm statistics at the same worker count, their mean over the saved workers at
    /// another; nothing for a model without buffers (or a checkpoint written before buffers were saved: the
    /// statistics then start afresh, which only the evaluations before the next averaging see).</summary>
    private void RestoreBuffers(Checkpoint checkpoint, int savedWorkers, string path)
    {
        var stage = worker.Stage;
        var length = stage.BufferLength;
        if (length == 0 || !checkpoint.Has("worker 0/buffers"))
        {
            return;
        }

        var rank = context.World.Rank;
        float[] values;
        if (savedWorkers == context.World.Size)
        {
            values = checkpoint.Get($"worker {rank}/buffers");
        }
        else
        {
            values = new float[length];
            for (var r = 0; r < savedWorkers; r++)
            {
                var saved = checkpoint.Get($"worker {r}/buffers");
                for (var i = 0; i < length && i < saved.Length; i++)
                {
                    values[i] += saved[i] / savedWorkers;
                }
            }
        }

        if (values.Length != length)
        {
            throw new InputException($"{TrainFlags.Resume}: {path} holds {values.Length} BatchNorm statistics per worker, the model has {length}");
        }

        stage.SetBuffers(values);
    }

    private IGradientCompressor? Compressor => (worker.Exchange as ICompressingExchange)?.Compressor;

    /// <summary>The model's layers and their parameter counts: the checkpoint's fingerprint.</summary>
    private IReadOnlyList<CheckpointLayer> ModelLayers() =>
        [.. StageBuilder.Profile(ModelZoo.Build(context.Options.Model, context.Train.Geometry), context.Train.SampleShape)
            .Select(p => new CheckpointLayer(p.Layer.ToString(), p.Parameters))];

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
