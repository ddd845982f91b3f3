using System.Diagnostics;
using System.Runtime.InteropServices;
using MpiPipeline.Algorithms;
using MpiPipeline.Data;
using MpiPipeline.Engines;
using MpiPipeline.Exchange;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Async;

/// <summary>
/// DASGD, distributed asynchronous SGD (Zhou, Mertikopoulos, Bambos, Glynn, Ye, Li, Fei-Fei, ICML 2018; the journal
/// version arXiv 2107.02919). Rank 0, the master, holds x_n; workers 1..n-1 each fetch a model, compute a stochastic
/// gradient of their own mini-batch at it and send it back; the master applies each gradient as it arrives,
///     x_n = x_{n-1} - alpha_n g(x_{s(n)}),    d_n = (n - 1) - s(n)    (the paper's update, its delay d_n),
/// and answers the worker with the model for its next gradient (<see cref="DelaySchedule"/>: the current one, or an
/// older one to inject staleness). The master never waits for a particular worker: one MPI_Irecv per worker is posted
/// and MPI_Testany polls them (--arrival fixed takes them in turn instead: the deterministic mode). The ranks do not
/// step in lockstep: the loop's step t is the master's update t + 1; a worker does all its work in its first step and
/// returns when the master stops it. The master stops each worker once the requested updates are all handed out, so
/// the updates applied equal the gradients sent, and every worker ends.
/// The divergence guard runs on the master alone (the ranks never meet in a collective): it checks each gradient's
/// loss and norm before applying it; a non-finite x shows in the next gradient computed at it. At a divergence the
/// master receives the gradients still in flight (dropped, counted), and its stop message carries the divergence to
/// every worker, so that each ends the run as diverged (exit status 4). Stops go out only at the end (the last update
/// or a divergence), for that reason: a worker stopped earlier could not learn of a divergence after it.
/// </summary>
internal sealed partial class DasgdEngine : ITrainingEngine
{
    /// <summary>Fault injection for the no-hang test: this world rank stops itself (SIGSTOP) after its first gradient.</summary>
    public const string StopRankVariable = "MPIPIPE_FAULT_SIGSTOP_RANK";

    public static AlgorithmRegistration Registration { get; } = new(
        "dasgd", "distributed asynchronous SGD (Zhou et al. 2018): rank 0 applies each worker's gradient as it arrives, x_n = x_{n-1} - alpha_n g(x_s(n))",
        [
            new(TrainFlags.Delay, o => o.Delay is not null), new(TrainFlags.StepSchedule, o => o.StepSchedule is not null),
            new(TrainFlags.Arrival, o => o.FixedArrival), new(TrainFlags.DelayHistogram, o => o.DelayHistogramPath is not null),
            DataParallelEngine.SlowWorkersOption,
        ],
        context => new DasgdEngine(context))
    {
        Validate = (options, ranks) =>
        {
            if (ranks < 2)
            {
                throw new InputException($"--algo dasgd needs a master (rank 0) and at least one worker: start the job with 2 or more ranks (it has {ranks})");
            }

            if (options.Optimizer != OptimizerKind.Sgd || options.Nesterov || options.WeightDecay != 0)
            {
                throw new InputException("--algo dasgd applies the paper's plain step x_n = x_{n-1} - alpha_n g: --optimizer adam, --nesterov and --weight-decay do not apply");
            }

            if (options.CheckpointDirectory is not null || options.ResumePath is not null)
            {
                // The master's state at update n includes the gradients in flight and the past models it still serves:
                // no between-steps point exists at which a checkpoint would let the run continue exactly.
                throw new InputException($"--algo dasgd does not take {TrainFlags.Checkpoint} or {TrainFlags.Resume}: its workers are never between two steps together, so no checkpoint could continue the run exactly");
            }

            var delay = DelaySchedule.Parse(options.Delay ?? "none", options.Seed);
            StepSchedule.Parse(options.StepSchedule ?? StepSchedule.DefaultFor(delay.Growth));
            SlowWorkers.Parse(options.SlowWorkers).Validate(ranks, 1);
        },
        Describe = (o, ranks) => $"dasgd ({ranks - 1} workers, --delay {o.Delay ?? "none"}, arrival {(o.FixedArrival ? "fixed" : "any")})",
    };

    private const int ModelTag = 0x5A01, StopTag = 0x5A02, GradientTag = 0x5A03;

    /// <summary>A gradient message: version s, loss, correct, count (ints as their float bits), then the gradient.</summary>
    private const int GradientHeader = 4;

    /// <summary>A model message: its version, then the parameters.</summary>
    private const int ModelHeader = 1;

    /// <summary>A stop message: diverged (0 or 1), then the divergence: step, rank, has a loss, loss, gradient norm,
    /// steps skipped before (ints as their float bits).</summary>
    private const int StopLength = 7;

    /// <summary>The snapshots the injected delays need may take at most this much of the master's memory.</summary>
    private const long HistoryBudgetBytes = 4L << 30;

    private const int EvaluationBatch = 1000;

    private readonly TrainingContext context;
    private readonly Communicator world;
    private readonly Stage stage;
    private readonly DelaySchedule delay;
    private readonly StepSchedule steps;
    private readonly SlowWorkers slow;
    private readonly int workers;
    private readonly int length;
    private readonly IdleWait idle;
    private readonly List<string> notes = [];
    private StepCounters stats;

    // ---- master ----
    private readonly float[] x = [];
    private readonly Dictionary<long, float[]> history = [];
    private readonly Stack<float[]> spare = [];
    private readonly long[] minServedFrom = [];
    private readonly Request[] receives = [];
    private readonly Request?[] sends = [];
    private readonly float[][] gradientBuffers = [];
    private readonly float[][] modelBuffers = [];
    private readonly long[] lastHeard = [];
    private readonly int[] peers = [];
    private readonly long[] received = [];
    private readonly SortedDictionary<long, long> delays = [];
    private readonly float[] stopMessage = new float[StopLength];
    private long assigned;
    private long applied;
    private long dropped;
    private double waitSeconds;

    // ---- worker ----
    private readonly IBatchSampler? sampler;
    private readonly float[] batchImages = [];
    private readonly int[] batchLabels = [];
    private readonly int[] batchIndices = [];
    private long sent;
    private bool workerDone;

    public DasgdEngine(TrainingContext context)
    {
        this.context = context;
        world = context.World;
        var options = context.Options;
        workers = world.Size - 1;
        delay = DelaySchedule.Parse(options.Delay ?? "none", options.Seed);
        steps = StepSchedule.Parse(options.StepSchedule ?? StepSchedule.DefaultFor(delay.Growth));
        slow = SlowWorkers.Parse(options.SlowWorkers);
        idle = context.Node.PipelineWait;
        stage = Stage.Create(ModelZoo.Build(options.Model, context.Train.Geometry), context.Train.SampleShape, options.Device, options.Seed);
        length = checked((int)stage.ParameterCount);
        if (stage.BufferLength > 0)
        {
            // The master evaluates its x with its own running statistics, which only the workers' batches would
            // update: without a protocol that carries them, evaluation would use the initial statistics, silently.
            stage.Dispose();
            throw new InputException($"--algo dasgd does not carry BatchNorm running statistics from the workers to the master: " +
                $"--model {options.Model} has BatchNorm layers; use a model without BatchNorm, or psgd / local-sgd, which average them");
        }

        minServedFrom = MinServedFrom(delay, context.TotalSteps);
        var peak = PeakSnapshots(minServedFrom);
        if (peak * length * (long)sizeof(float) > HistoryBudgetBytes)
        {
            throw new InputException($"{TrainFlags.Delay} {delay.Text} over {context.TotalSteps} updates keeps up to {peak} past models of {length} parameters " +
                $"on the master ({peak * length * 4L >> 20} MiB, over {HistoryBudgetBytes >> 30} GiB): lower the delay or the updates");
        }

        if (world.Rank == 0)
        {
            x = new float[length];
            receives = new Request[workers];
            sends = new Request?[workers];
            gradientBuffers = [.. Enumerable.Range(0, workers).Select(_ => new float[GradientHeader + length])];
            modelBuffers = [.. Enumerable.Range(0, workers).Select(_ => new float[ModelHeader + length])];
            lastHeard = new long[workers];
            peers = [.. Enumerable.Range(1, workers)];
            received = new long[workers];
        }
        else
        {
            // Worker k (rank k) takes slice k - 1 of each round of (workers x batch) samples of one permutation per epoch.
            sampler = new ShuffleSampler(context.Train.Count, options.Seed, options.Batch * workers, world.Rank - 1, workers);
            batchImages = new float[sampler.Batch * context.Train.SampleSize];
            batchLabels = new int[sampler.Batch];
            batchIndices = new int[sampler.Batch];
        }

        Plan = context.Plan(workers, stage.ParameterCount, "shuffle", Registration.Describe(options, world.Size)) with { WholeBatchPerWorker = true };
        notes.Add($"dasgd: step schedule {steps.Text} (alpha_0 = --lr {options.LearningRate}), delay {delay.Text}; "
            + (StepSchedule.WithinCondition(steps.Text, delay.Growth) ? "within" : "outside")
            + $" the paper's condition for delays growing as n^P, P = {delay.Growth} ((1 + P)/2 < q <= 1; quasilinear up to P = 1); --momentum is not used (plain steps)");
        if (context.Node.OversubscribedNote("the master polls its receives with MPI_Testany and sleeps between polls", wholeJob: true) is { } oversubscribed)
        {
            notes.Add(oversubscribed);
        }
    }

    public string Algorithm => Registration.Name;

    public TrainingPlan Plan { get; }

    public IReadOnlyList<string> Notes => notes;

    public bool RootSeesBatchLoss => true;

    public long CommunicationRounds => world.Rank == 0 ? applied : sent;

    /// <summary>Updates the master applied (rank 0) and gradients this worker sent (other ranks).</summary>
    public long Applied => applied;

    public IReadOnlyDictionary<long, long> Delays => delays;

    public double Start()
    {
        if (world.Rank != 0)
        {
            return 0;
        }

        stage.PullParameters();
        stage.Parameters.CopyTo(x);
        Remember(0);
        var now = Environment.TickCount64;
        for (var k = 0; k < workers; k++)
        {
            lastHeard[k] = now;
            if (assigned < context.TotalSteps)
            {
                receives[k] = world.Irecv<float>(gradientBuffers[k], k + 1, GradientTag);
                Serve(k, 0);
                assigned++;
            }
            else
            {
                receives[k] = Request.Inactive();    // more workers than updates: stopped with the others at the end
            }
        }

        if (context.TotalSteps == 0)
        {
            StopAll(null);
        }

        return 0;
    }

    public LossResult Step(long t) => world.Rank == 0 ? MasterStep(t) : WorkerStep();

    public double CurveMean(double localSum, int count) => localSum / count;

    public void ReduceTally(LossTally tally)
    {
        // The master holds every applied gradient's batch loss; the workers none: nothing to reduce.
    }

    /// <summary>Test loss and accuracy of the master's x_n (the workers hold no model of their own).</summary>
    public (double Loss, double Accuracy) Evaluate()
    {
        if (world.Rank != 0)
        {
            return (double.NaN, double.NaN);
        }

        var clock = Stopwatch.StartNew();
        x.CopyTo(stage.Parameters);
        stage.PushParameters();
        stage.Training = false;
        var tally = LossTally.Evaluate(context.Test, 0, 1, EvaluationBatch, (images, labels, count) => stage.Evaluate(images, count, labels));
        stage.Training = true;
        stats += new StepCounters { EvaluationSeconds = clock.Elapsed.TotalSeconds };
        return tally.Means();
    }

    public EpochCounters EpochCounters() => stats.Epoch(new ExchangeCounters());

    public (double Compute, double Communication) OwnSeconds() => (stats.ComputeSeconds, stats.CommunicationSeconds);

    public double ReplicaSpread() => 0;

    /// <summary>
    /// Collective: every worker's count of gradients sent goes to every rank; the master checks it against what it
    /// received from that worker and against the updates it applied (no gradient lost or applied twice).
    /// </summary>
    public RunTotals Totals()
    {
        var counts = new long[world.Size];
        counts[world.Rank] = world.Rank == 0 ? applied : sent;
        world.Allreduce<long>(counts, ReduceOp.Sum);
        SentPerWorker = counts[1..];
        AppliedUpdates = counts[0];
        if (world.Rank == 0)
        {
            for (var k = 0; k < workers; k++)
            {
                if (received[k] != counts[k + 1])
                {
                    throw new InvalidOperationException($"dasgd accounting: worker {k + 1} sent {counts[k + 1]} gradients, the master received {received[k]}");
                }
            }

            if (counts[1..].Sum() != applied + dropped)
            {
                throw new InvalidOperationException($"dasgd accounting: the workers sent {counts[1..].Sum()} gradients, the master applied {applied} updates and dropped {dropped}");
            }
        }

        return stats.ReduceTotals(world, new ExchangeCounters());
    }

    /// <summary>After <see cref="Totals"/>: gradients sent by worker k at index k - 1.</summary>
    public long[] SentPerWorker { get; private set; } = [];

    public long AppliedUpdates { get; private set; }

    public void DescribeOptions(IDictionary<string, string> options)
    {
        options["delay"] = delay.Text;
        options["stepSchedule"] = steps.Text;
        options["arrival"] = context.Options.FixedArrival ? "fixed" : "any";
        options["slowWorkers"] = context.Options.SlowWorkers ?? "";
        options["updatesApplied"] = AppliedUpdates.ToString();
        options["gradientsSent"] = string.Join(",", SentPerWorker);
        if (world.Rank == 0 && dropped > 0)
        {
            options["gradientsDropped"] = dropped.ToString();
        }

        if (world.Rank == 0)
        {
            var count = delays.Values.Sum();
            options["delayMean"] = count > 0 ? (delays.Sum(p => (double)p.Key * p.Value) / count).ToString("G6") : "";
            options["delayMax"] = count > 0 ? delays.Keys.Max().ToString() : "";
            options["masterWaitSeconds"] = waitSeconds.ToString("G6");
        }
    }

    /// <summary>Never called: <c>Validate</c> refuses checkpoints for dasgd.</summary>
    public Checkpoint? Capture(CheckpointHeader header) => throw new InvalidOperationException("dasgd keeps no checkpoints");

    /// <inheritdoc cref="Capture"/>
    public void Restore(Checkpoint checkpoint, string path) => throw new InvalidOperationException("dasgd keeps no checkpoints");

    public void SaveParameters(string path)
    {
        if (world.Rank == 0)
        {
            TrainingLoop.WriteParameters(path, x);
        }
    }

    public void Finish()
    {
        if (world.Rank == 0 && context.Options.DelayHistogramPath is { } path)
        {
            DelayHistogram.Write(path, delays, delay.Text, steps.Text, context.Options.Seed);
        }
    }

    public void Dispose() => stage.Dispose();

    /// <summary>min over m >= n of s(m), for n = 0..updates: versions older than this are never served again.</summary>
    internal static long[] MinServedFrom(DelaySchedule schedule, long updates)
    {
        var min = new long[updates + 2];
        min[updates + 1] = long.MaxValue;
        for (var n = updates; n >= 0; n--)
        {
            min[n] = Math.Min(min[n + 1], schedule.Served(n));
        }

        return min;
    }

    private static long PeakSnapshots(long[] minServedFrom)
    {
        var peak = 0L;
        for (var n = 0; n < minServedFrom.Length - 1; n++)
        {
            peak = Math.Max(peak, n + 1 - Math.Min(n + 1, minServedFrom[n + 1]));
        }

        return peak;
    }

    /// <summary>Update n = t + 1: the next gradient (any worker's, or worker (t mod workers) + 1's with --arrival fixed), applied.</summary>
    private LossResult MasterStep(long t)
    {
        var clock = Stopwatch.StartNew();
        int k;
        Status status;
        if (context.Options.FixedArrival)
        {
            k = (int)(t % workers);
            status = receives[k].WaitPolling(idle, $"MPI_Irecv (polling wait: worker {k + 1}'s gradient)");
        }
        else
        {
            (k, status) = Request.WaitAnyPolling(receives, peers, lastHeard, world, idle, "MPI_Testany (polling wait: the workers' gradients)");
        }

        waitSeconds += clock.Elapsed.TotalSeconds;
        stats += new StepCounters { CommunicationSeconds = clock.Elapsed.TotalSeconds, PointToPointBytes = 0 };
        clock.Restart();
        lastHeard[k] = Environment.TickCount64;
        if (status.Count<float>() != GradientHeader + length)
        {
            throw new InvalidOperationException($"dasgd: worker {k + 1} sent {status.Count<float>()} values, expected {GradientHeader + length}");
        }

        var message = gradientBuffers[k];
        long s = BitConverter.SingleToInt32Bits(message[0]);
        var result = new LossResult(message[1], BitConverter.SingleToInt32Bits(message[2]), BitConverter.SingleToInt32Bits(message[3]));
        var n = t + 1;
        var d = t - s;                                                   // d_n = (n - 1) - s(n): versions applied since x_s
        delays[d] = delays.GetValueOrDefault(d) + 1;
        var g = message.AsSpan(GradientHeader);
        received[k]++;
        if (context.Guard.CheckAlone(t, k + 1, result, g))
        {
            var alpha = (float)(context.Options.LearningRate * steps.Factor(n));
            for (var i = 0; i < x.Length; i++)
            {
                x[i] -= alpha * g[i];                                    // x_n = x_{n-1} - alpha_n g(x_{s(n)})
            }
        }
        else if (context.Guard.Diverged is { } diverged)
        {
            dropped++;
            DrainAndStop(diverged);
            return result;
        }

        // (A step the guard skipped leaves x_n = x_{n-1}: the update is counted, as the loop counts the step.)
        applied = n;
        Remember(n);
        if (assigned < context.TotalSteps)
        {
            receives[k] = world.Irecv<float>(message, k + 1, GradientTag);
            Serve(k, n);
            assigned++;
        }

        if (n == context.TotalSteps)
        {
            StopAll(null);
        }

        stats += new StepCounters { Steps = 1, ComputeSeconds = clock.Elapsed.TotalSeconds };
        return result;
    }

    /// <summary>Sends worker k the model for its next gradient: x_{s(n)}, after update n.</summary>
    private void Serve(int k, long n)
    {
        var version = delay.Served(n);
        var source = version == n ? x : history[version];
        sends[k]?.Wait();
        var buffer = modelBuffers[k];
        buffer[0] = BitConverter.Int32BitsToSingle(checked((int)version));
        source.CopyTo(buffer.AsSpan(ModelHeader));
        sends[k] = world.Isend<float>(buffer, k + 1, ModelTag);
        stats += new StepCounters { PointToPointBytes = buffer.Length * sizeof(float) };
    }

    /// <summary>The end of the run on the master: every worker is told to stop, and whether the run diverged.</summary>
    private void StopAll(Divergence? diverged)
    {
        if (diverged is { } d)
        {
            var seen = d.Seen;
            stopMessage[0] = 1;
            stopMessage[1] = BitConverter.Int32BitsToSingle(checked((int)d.Step));
            stopMessage[2] = BitConverter.Int32BitsToSingle(seen.Rank);
            stopMessage[3] = seen.Loss is null ? 0 : 1;
            stopMessage[4] = (float)(seen.Loss ?? 0);
            stopMessage[5] = (float)seen.GradientNorm;
            stopMessage[6] = BitConverter.Int32BitsToSingle(d.SkippedSteps);
        }

        for (var k = 0; k < workers; k++)
        {
            sends[k]?.Wait();
            sends[k] = world.Isend<float>(stopMessage, k + 1, StopTag);
        }

        Request.WaitAll([.. sends.OfType<Request>()]);
    }

    /// <summary>After a divergence: the gradients still in flight are received (the workers' sends complete, none is
    /// lost from the accounting) and dropped; then every worker is stopped with the divergence.</summary>
    private void DrainAndStop(Divergence diverged)
    {
        while (receives.Any(r => !r.IsCompleted))
        {
            var (j, _) = Request.WaitAnyPolling(receives, peers, lastHeard, world, idle, "MPI_Testany (polling wait: the gradients in flight at a divergence)");
            lastHeard[j] = Environment.TickCount64;
            received[j]++;
            dropped++;
        }

        StopAll(diverged);
    }

    /// <summary>The divergence a worker's stop message carries, or null when the run did not diverge.</summary>
    private static Divergence? DivergenceIn(ReadOnlySpan<float> stop) =>
        stop.Length < StopLength || stop[0] == 0 ? null : new Divergence(
            BitConverter.SingleToInt32Bits(stop[1]),
            new NonFiniteValue(BitConverter.SingleToInt32Bits(stop[2]), stop[3] != 0 ? stop[4] : null, stop[5]),
            BitConverter.SingleToInt32Bits(stop[6]));

    /// <summary>Keeps a copy of x_n if a later answer serves it; drops the copies no answer from update n on serves.</summary>
    private void Remember(long n)
    {
        var oldest = minServedFrom[n];
        foreach (var version in history.Keys.Where(v => v < oldest).ToList())
        {
            spare.Push(history[version]);
            history.Remove(version);
        }

        if (minServedFrom[n + 1] <= n)
        {
            var copy = spare.Count > 0 ? spare.Pop() : new float[length];
            x.CopyTo(copy, 0);
            history[n] = copy;
        }
    }

    /// <summary>A worker: model in, gradient out, until the master says stop (all in its first step).</summary>
    private LossResult WorkerStep()
    {
        if (workerDone)
        {
            return default;
        }

        var options = context.Options;
        var model = new float[ModelHeader + length];
        var message = new float[GradientHeader + length];
        Request? pending = null;
        var stopRank = Environment.GetEnvironmentVariable(StopRankVariable);
        while (true)
        {
            var clock = Stopwatch.StartNew();
            var status = world.Irecv<float>(model, 0, Communicator.AnyTag).WaitPolling(idle, "MPI_Irecv (polling wait: the master's model)");
            pending?.Wait();
            stats += new StepCounters { CommunicationSeconds = clock.Elapsed.TotalSeconds };
            if (status.Tag == StopTag)
            {
                if (DivergenceIn(model.AsSpan(0, status.Count<float>())) is { } diverged)
                {
                    context.Guard.Adopt(diverged);
                }

                break;
            }

            clock.Restart();
            var version = BitConverter.SingleToInt32Bits(model[0]);
            model.AsSpan(ModelHeader).CopyTo(stage.Parameters);
            stage.PushParameters();
            sampler!.Indices(sent, batchIndices);
            TorchRuntime.GatherRows(context.Train.Images, context.Train.SampleSize, batchIndices, batchImages);
            context.Train.CopyLabels(batchIndices, batchLabels);
            TorchRuntime.ManualSeed(Shuffle.SeedFor(options.Seed, world.Rank, sent));
            stage.ZeroGradients();
            var result = stage.ForwardLossBackward(batchImages, sampler.Batch, batchLabels, 1f, []);
            stage.PullGradients();
            var compute = clock.Elapsed.TotalSeconds;
            stats += new StepCounters { Steps = 1, Samples = result.Count, ComputeSeconds = compute };
            slow.Delay(world.Rank, compute);
            message[0] = BitConverter.Int32BitsToSingle(version);
            message[1] = result.Loss;
            message[2] = BitConverter.Int32BitsToSingle(result.Correct);
            message[3] = BitConverter.Int32BitsToSingle(result.Count);
            stage.Gradients.CopyTo(message.AsSpan(GradientHeader));
            pending = world.Isend<float>(message, 0, GradientTag);
            stats += new StepCounters { PointToPointBytes = message.Length * sizeof(float) };
            sent++;
            if (sent == 1 && stopRank == world.Rank.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                pending.Wait();
                _ = Kill(Environment.ProcessId, SigStop);
            }
        }

        workerDone = true;
        return default;
    }

    private const int SigStop = 19;

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
