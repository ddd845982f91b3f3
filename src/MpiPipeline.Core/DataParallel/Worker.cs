using System.Diagnostics;
using MpiPipeline.Data;
using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.DataParallel;

/// <summary>
/// One data-parallel worker j: its model replica x_j (a whole-model <see cref="Stage"/>), its optimizer, its data
/// sampler and the group it averages with. The algorithms are written in terms of these few operations.
/// </summary>
internal sealed class Worker : IDisposable
{
    private readonly Dataset train;
    private readonly float[] batchImages;
    private readonly int[] batchLabels;
    private readonly int[] batchIndices;
    private readonly TrainOptions options;
    private readonly NonFiniteGuard? guard;
    private readonly IdleWait? wait;
    private readonly SlowWorkers slow;
    private Communicator? group;
    private long step;
    private LossResult stepLoss;
    private bool hostGradientsCurrent;

    /// <param name="wait">How the exchange's Allreduce waits: null, MPI's own blocking MPI_Allreduce; otherwise
    /// MPI_Iallreduce polled with this (<see cref="NodeShare.AllreduceWait"/>: yielding on an oversubscribed node).</param>
    /// <param name="averagesGradients">The algorithm averages gradients every step: they go in buckets overlapped with
    /// backward (<see cref="GradientOverlap"/>) unless --no-overlap.</param>
    /// <param name="guard">Consulted before every optimizer step (null: none, as in the bridge benchmark).</param>
    public Worker(TrainOptions options, Communicator world, Dataset train, IBatchSampler sampler, IdleWait? wait = null, bool averagesGradients = false, NonFiniteGuard? guard = null)
    {
        this.options = options;
        this.guard = guard;
        this.wait = wait;
        this.train = train;
        slow = SlowWorkers.Parse(options.SlowWorkers);
        Id = world.Rank;
        group = world;
        Sampler = sampler;
        var layers = ModelZoo.Build(options.Model, train.Geometry);
        Stage = Stage.Create(layers, train.SampleShape, options.Device, options.Seed,
            separateHostMirrors: GradientStaging.Forced(Environment.GetEnvironmentVariable(GradientStaging.ForceVariable)));
        Optimizer = TrainingLoop.CreateOptimizer(options, Stage);
        if (averagesGradients && GradientOverlap.Applies(options, Stage, world))
        {
            Overlapped = GradientOverlap.Attach(options, Stage, world, wait, Id);
            Exchange = Overlapped;
        }
        else if (averagesGradients && GradientStaging.Applies(options, Stage, world))
        {
            Staged = GradientStaging.Create(options, Stage, world, wait);
            Exchange = Staged;
        }
        else if (averagesGradients && CompressorRegistry.Create(options.Compress, new CompressorContext(options.Seed, Id)) is { } compressor)
        {
            Exchange = new CompressedExchange(world, wait, compressor);
        }
        else
        {
            Exchange = ExchangeRegistry.Find(options.Exchange).Create(world, wait);
        }

        batchImages = new float[sampler.Batch * train.SampleSize];
        batchLabels = new int[sampler.Batch];
        batchIndices = new int[sampler.Batch];
    }

    /// <summary>j: the worker's id, its rank in MPI_COMM_WORLD (chunk assignment and seeds follow it).</summary>
    public int Id { get; }

    /// <summary>The workers that average together: the world, or the survivors after a failure.</summary>
    public Communicator Group => group ?? throw new InvalidOperationException($"worker {Id} has left the run");

    public Stage Stage { get; }
    public Optimizer Optimizer { get; }
    public IBatchSampler Sampler { get; }
    public StepCounters Stats { get; set; }

    /// <summary>How the workers average gradients and models, and the counters of what it handed to MPI.</summary>
    public IGradientExchange Exchange { get; }

    /// <summary>The exchange when it overlaps the gradient Allreduce with backward; null otherwise.</summary>
    public OverlappedAllreduceExchange? Overlapped { get; }

    /// <summary>The exchange when the gradients stay on the device and are staged (or go to a CUDA-aware MPI); null otherwise.</summary>
    public StagedAllreduceExchange? Staged { get; }

    /// <summary>Stopwatch timestamps of the last step's forward + backward and optimizer step (the trace's spans).</summary>
    public (long Start, long End) ForwardBackwardSpan { get; private set; }

    public (long Start, long End) OptimizerSpan { get; private set; }

    /// <summary>g_j = grad f(x_j; xi_j^(t)): the mean cross-entropy gradient of this worker's mini-batch at step t.</summary>
    public LossResult ComputeGradient(long t)
    {
        var clock = Stopwatch.StartNew();
        Sampler.Indices(t, batchIndices);
        // Images on libtorch's intra-op threads (in parallel at 2+ threads, as a libtorch loop's index_select), labels here.
        TorchRuntime.GatherRows(train.Images, train.SampleSize, batchIndices, batchImages);
        train.CopyLabels(batchIndices, batchLabels);
        Stats += new StepCounters { DataSeconds = clock.Elapsed.TotalSeconds };
        clock.Restart();
        TorchRuntime.ManualSeed(Shuffle.SeedFor(options.Seed, Id, t));
        Stage.ZeroGradients();
        if (Overlapped is { } overlapped)
        {
            GradientOverlap.BeginStep(overlapped, Stage, backwardCalls: 1);
        }

        var start = Stopwatch.GetTimestamp();
        var result = Stage.ForwardLossBackward(batchImages, Sampler.Batch, batchLabels, 1f, []);
        ForwardBackwardSpan = (start, Stopwatch.GetTimestamp());
        // Separate host mirrors (CUDA) are pulled only when read: a staged exchange moves the gradients bucket by
        // bucket itself, and a single rank without the divergence guard never needs them on the host.
        hostGradientsCurrent = !Stage.SeparateHostMirrors;

        Stats += new StepCounters { Steps = 1, Samples = result.Count, ComputeSeconds = clock.Elapsed.TotalSeconds };
        slow.Delay(Id, clock.Elapsed.TotalSeconds);
        (step, stepLoss) = (t, result);
        return result;
    }

    /// <summary>
    /// x_j &lt;- x_j - eta * update(g_j): the optimizer's step on the flat buffers, unless the group agrees (the
    /// divergence guard) that a worker's loss or gradient of this step is not finite: then no worker updates.
    /// </summary>
    public void OptimizerStep()
    {
        if (guard is not null)
        {
            EnsureHostGradients();
        }

        if (guard is not null && !guard.Check(step, Group, Id, stepLoss, Stage.Gradients, wait))
        {
            return;
        }

        var clock = Stopwatch.StartNew();
        var start = Stopwatch.GetTimestamp();
        Optimizer.Step();
        OptimizerSpan = (start, Stopwatch.GetTimestamp());
        Stats += new StepCounters { ComputeSeconds = clock.Elapsed.TotalSeconds };
    }

    /// <summary>g_j &lt;- (1/p) sum_j g_j: over the flat gradient buffer, finishing the buckets backward started when overlapped.</summary>
    public void AverageGradients()
    {
        if (Staged is not null)
        {
            Staged.AverageGradients(Stage.Gradients);
            // Staged: the host mirror holds the averaged gradients too; a CUDA-aware round left it behind.
            hostGradientsCurrent = !Staged.CudaAware;
            return;
        }

        EnsureHostGradients();
        Exchange.AverageGradients(Stage.Gradients);
        Stage.PushGradients();
    }

    private void EnsureHostGradients()
    {
        if (!hostGradientsCurrent)
        {
            Stage.PullGradients();
            hostGradientsCurrent = true;
        }
    }

    /// <summary>x_j &lt;- (1/p) sum_j x_j: one Allreduce over the flat parameter buffer (the averaging step).</summary>
    public void AverageModels()
    {
        Stage.PullParameters();
        Exchange.AverageModels(Stage.Parameters);
        Stage.PushParameters();
    }

    /// <summary>Every replica starts from rank 0's parameters.</summary>
    public void BroadcastParameters()
    {
        Stage.PullParameters();
        Group.Bcast(Stage.Parameters, 0);
        Stage.PushParameters();
    }

    /// <summary>The average model without touching the replica: for evaluation, not counted as a training round.</summary>
    /// <summary>
    /// Collective over the group: every replica's buffers (BatchNorm's running statistics) replaced by their mean over
    /// the replicas. Each replica updates its own from its own batches and no exchange carries them, so without this an
    /// evaluation would use whichever replica's statistics it ran on. Nothing to do (and no call) without buffers.
    /// </summary>
    public void AverageBuffers()
    {
        if (Stage.BufferLength == 0)
        {
            return;
        }

        var buffers = Stage.GetBuffers();
        Exchange.AverageUncounted(buffers);
        Stage.SetBuffers(buffers);
    }

    public float[] AverageModelCopy()
    {
        Stage.PullParameters();
        var copy = Stage.Parameters.ToArray();
        Exchange.AverageUncounted(copy);
        return copy;
    }

    /// <summary>
    /// After a failure the survivors continue in a new communicator (null on the worker that left); the old one is
    /// freed by every member, collectively, right after the split.
    /// </summary>
    public void ReplaceGroup(Communicator? survivors)
    {
        if (group is { IsPredefined: false })
        {
            group.Free();
        }

        group = survivors;
        if (survivors is not null)
        {
            Exchange.Group = survivors;
        }
    }

    public void Dispose()
    {
        Optimizer.Dispose();
        Stage.Dispose();
    }
}
