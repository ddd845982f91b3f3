using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>Counters one worker keeps: what the results JSON reports per rank.</summary>
internal sealed class TrainingStats
{
    public long Steps { get; set; }
    public long CommunicationRounds { get; set; }

    /// <summary>Bytes this rank handed to Allreduce (the payload; what a ring moves per rank is 2(n-1)/n of it).</summary>
    public long AllreducePayloadBytes { get; set; }

    /// <summary>Bytes a ring Allreduce sends per rank for that payload: 2(n-1)/n * S per round.</summary>
    public double EstimatedBytesSent { get; set; }

    public double ComputeSeconds { get; set; }
    public double CommunicationSeconds { get; set; }
    public double DataSeconds { get; set; }
    public double EvaluationSeconds { get; set; }

    /// <summary>Wall time of whole training steps (the loop measures it around each algorithm step).</summary>
    public double StepSeconds { get; set; }

    public long Samples { get; set; }

    /// <summary>
    /// The run's totals over <paramref name="group"/> (every rank of it calls this): times and bytes sent are means over
    /// its ranks, samples a sum; <paramref name="pointToPointBytes"/> adds this rank's point-to-point traffic (pipeline).
    /// </summary>
    public RunTotals ReduceTotals(Communicator group, long pointToPointBytes = 0)
    {
        double[] sums = [ComputeSeconds, CommunicationSeconds, DataSeconds, EvaluationSeconds, StepSeconds, Samples,
            EstimatedBytesSent + pointToPointBytes];
        group.Allreduce<double>(sums, ReduceOp.Sum);
        var n = group.Size;
        return new RunTotals(
            Steps: Steps,
            Samples: (long)sums[5],
            CommunicationRounds: CommunicationRounds,
            AllreducePayloadBytesPerRank: AllreducePayloadBytes,
            BytesSentPerRank: (long)(sums[6] / n),
            ComputeSeconds: sums[0] / n,
            CommunicationSeconds: sums[1] / n,
            DataSeconds: sums[2] / n,
            EvaluationSeconds: sums[3] / n,
            StepSeconds: sums[4] / n,
            LoopOverheadSeconds: Math.Max(0, (sums[4] - sums[0] - sums[1]) / n));
    }
}

/// <summary>
/// Loss, correct answers and samples summed over batches, then over ranks: the train or test figures of an epoch.
/// </summary>
internal sealed class LossTally
{
    private readonly double[] sums = new double[3];

    public double Samples => sums[2];

    /// <summary>Adds a batch's mean loss, weighted by its sample count.</summary>
    public void Add(double meanLoss, double correct, double count)
    {
        sums[0] += meanLoss * count;
        sums[1] += correct;
        sums[2] += count;
    }

    /// <summary>Sums the tallies of <paramref name="group"/>'s ranks (every rank of it calls this) into every rank's.</summary>
    public LossTally Allreduce(Communicator group)
    {
        group.Allreduce<double>(sums, ReduceOp.Sum);
        return this;
    }

    /// <summary>Mean loss and accuracy per sample (0 when no sample was counted).</summary>
    public (double Loss, double Accuracy) Means() => (sums[0] / Math.Max(1, sums[2]), sums[1] / Math.Max(1, sums[2]));

    /// <summary>The part <paramref name="part"/> of <paramref name="parts"/> of a set of <paramref name="count"/>
    /// samples, [Start, End): contiguous shares of ceil(count / parts), the last ones shorter or empty.</summary>
    public static (int Start, int End) Share(int count, int part, int parts)
    {
        var per = (count + parts - 1) / parts;
        var start = Math.Min(count, part * per);
        return (start, Math.Min(count, start + per));
    }
}

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
    private Communicator? group;

    public Worker(TrainOptions options, Communicator world, Dataset train, IBatchSampler sampler)
    {
        this.options = options;
        this.train = train;
        Id = world.Rank;
        group = world;
        Sampler = sampler;
        var layers = ModelZoo.Build(options.Model);
        Stage = Stage.Create(layers, train.SampleShape, options.Device, options.Seed);
        Optimizer = options.Optimizer == OptimizerKind.Adam
            ? Optimizer.Adam(Stage, options.LearningRate, weightDecay: options.WeightDecay)
            : Optimizer.Sgd(Stage, options.LearningRate, options.Momentum, nesterov: options.Nesterov, weightDecay: options.WeightDecay);
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
    public TrainingStats Stats { get; } = new();

    /// <summary>How the averaging Allreduce waits: null, MPI's own blocking MPI_Allreduce; otherwise MPI_Iallreduce polled
    /// with this (<see cref="NodeShare.AllreduceWait"/>: yielding on an oversubscribed node).</summary>
    public IdleWait? AllreduceWait { get; init; }

    /// <summary>g_j = grad f(x_j; xi_j^(t)): the mean cross-entropy gradient of this worker's mini-batch at step t.</summary>
    public LossResult ComputeGradient(long t)
    {
        var clock = Stopwatch.StartNew();
        Sampler.Indices(t, batchIndices);
        // Images on libtorch's intra-op threads (in parallel at 2+ threads, as a libtorch loop's index_select), labels here.
        TorchRuntime.GatherRows(train.Images, train.SampleSize, batchIndices, batchImages);
        train.CopyLabels(batchIndices, batchLabels);
        Stats.DataSeconds += clock.Elapsed.TotalSeconds;
        clock.Restart();
        TorchRuntime.ManualSeed(Shuffle.SeedFor(options.Seed, Id, t));
        Stage.ZeroGradients();
        var result = Stage.ForwardLossBackward(batchImages, Sampler.Batch, batchLabels, 1f, []);
        Stage.PullGradients();
        Stats.Steps++;
        Stats.Samples += result.Count;
        Stats.ComputeSeconds += clock.Elapsed.TotalSeconds;
        return result;
    }

    /// <summary>x_j &lt;- x_j - eta * update(g_j): the optimizer's step on the flat buffers.</summary>
    public void OptimizerStep()
    {
        var clock = Stopwatch.StartNew();
        Optimizer.Step();
        Stats.ComputeSeconds += clock.Elapsed.TotalSeconds;
    }

    /// <summary>g_j &lt;- (1/p) sum_j g_j: one Allreduce over the flat gradient buffer.</summary>
    public void AverageGradients()
    {
        AverageInPlace(Stage.Gradients, countAsRound: true);
        Stage.PushGradients();
    }

    /// <summary>x_j &lt;- (1/p) sum_j x_j: one Allreduce over the flat parameter buffer (the averaging step).</summary>
    public void AverageModels()
    {
        Stage.PullParameters();
        AverageInPlace(Stage.Parameters, countAsRound: true);
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
    public float[] AverageModelCopy()
    {
        Stage.PullParameters();
        var copy = Stage.Parameters.ToArray();
        AverageInPlace(copy, countAsRound: false);
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
    }

    public void Dispose()
    {
        Optimizer.Dispose();
        Stage.Dispose();
    }

    private void AverageInPlace(Span<float> buffer, bool countAsRound)
    {
        var clock = Stopwatch.StartNew();
        if (AllreduceWait is { } idle)
        {
            Group.Allreduce(buffer, ReduceOp.Sum, idle);
        }
        else
        {
            Group.Allreduce(buffer, ReduceOp.Sum);
        }

        Scale(buffer, 1f / Group.Size);
        var seconds = clock.Elapsed.TotalSeconds;
        if (countAsRound)
        {
            var bytes = (long)buffer.Length * sizeof(float);
            Stats.CommunicationRounds++;
            Stats.AllreducePayloadBytes += bytes;
            Stats.EstimatedBytesSent += 2.0 * (Group.Size - 1) / Group.Size * bytes;
            Stats.CommunicationSeconds += seconds;
        }
    }

    internal static void Scale(Span<float> buffer, float factor)
    {
        var vectors = MemoryMarshal.Cast<float, Vector<float>>(buffer);
        var f = new Vector<float>(factor);
        for (var i = 0; i < vectors.Length; i++)
        {
            vectors[i] *= f;
        }

        for (var i = vectors.Length * Vector<float>.Count; i < buffer.Length; i++)
        {
            buffer[i] *= factor;
        }
    }
}
