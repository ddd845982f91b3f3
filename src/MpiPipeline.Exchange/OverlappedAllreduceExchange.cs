using System.Diagnostics;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;

namespace MpiPipeline.Exchange;

/// <summary>When one bucket's Allreduce ran, as this rank saw it: Stopwatch timestamps of its start and of its completion.</summary>
public readonly record struct BucketTiming(int Bucket, long StartTimestamp, long EndTimestamp);

/// <summary>
/// The gradient Allreduce cut into buckets (<see cref="BucketPlan"/>) and overlapped with backward, as PyTorch's DDP
/// does. The bridge's gradient-ready hook calls <see cref="GradientReady"/> for each parameter as backward finishes
/// it; when all parameters of a bucket are in, the bucket's in-place MPI_Iallreduce (sum) starts - strictly in bucket
/// order, so a full bucket waits for its predecessors and every rank issues the same collectives in the same order.
/// MPI progresses a nonblocking collective only inside MPI calls, and backward calls no MPI between two of its
/// callbacks (a large layer's backward is one long matrix product). So where MPI provides MPI_THREAD_MULTIPLE a
/// progress thread MPI_Tests the requests in flight every <see cref="ProgressIntervalNanoseconds"/> while a round is
/// open; otherwise (or with <c>progressThread: false</c>) only the callbacks MPI_Test them, and a bucket moves only as
/// far as the sockets' buffers take it between two callbacks.
/// <see cref="AverageGradients"/> then starts the buckets not started yet (parameters without a gradient, a backward
/// without the hook), waits for all (polled with the node's wait, under the stall watchdog) and scales by 1/n.
/// Models are averaged as one whole-buffer Allreduce, like <see cref="AllreduceExchange"/>.
/// <para>With a compressor (<c>--compress</c>) the buckets go through it instead of an Allreduce
/// (<see cref="CompressedBuckets"/>): a bucket is encoded by the hook as soon as its gradients are final, its payload
/// size goes round with an MPI_Iallgather and its payload with an MPI_Iallgatherv, progressed the same way, and
/// <see cref="AverageGradients"/> decodes them all in rank order.</para>
/// </summary>
public sealed class OverlappedAllreduceExchange : IGradientExchange, ICompressingExchange
{
    private readonly AllreduceExchange whole;
    private readonly CompressedBuckets? compressed;
    private int nextToEncode;
    private readonly IReadOnlyList<GradientBucket> buckets;
    private readonly int[] bucketOf;
    private readonly int[] missing;
    private readonly Request?[] requests;
    private readonly long[] started;
    private readonly long[] completed;
    private readonly int parameterCount;
    private int nextToStart;
    private bool stepOpen;

    // The progress thread and the main thread touch the requests only under this lock.
    private readonly object gate = new();
    private readonly ManualResetEventSlim wake = new(false);
    private volatile bool polling;
    private Exception? progressError;

    /// <summary>How often the progress thread tests the buckets in flight: at 10 Gbit/s, 100 us is ~125 KB, well within
    /// a TCP socket's buffer, so the link does not wait for the next test; a wake-up costs a few microseconds.</summary>
    public const long ProgressIntervalNanoseconds = 100_000;

    /// <param name="parameterLengths">The parameters' element counts in layer order (the flat buffer's layout).</param>
    /// <param name="progressThread">Test the requests from a thread of its own while backward runs (needs
    /// MPI_THREAD_MULTIPLE); false: only from backward's callbacks.</param>
    /// <param name="compressor">Null: each bucket is one in-place MPI_Iallreduce; otherwise encoded by it and gathered.</param>
    public OverlappedAllreduceExchange(Communicator group, IdleWait? wait, IReadOnlyList<int> parameterLengths, long bucketBytes,
        bool progressThread = false, IGradientCompressor? compressor = null)
    {
        ArgumentNullException.ThrowIfNull(parameterLengths);
        whole = new AllreduceExchange(group, wait);
        buckets = BucketPlan.Create(parameterLengths, bucketBytes);
        BucketBytes = bucketBytes;
        parameterCount = parameterLengths.Count;
        bucketOf = new int[parameterCount];
        missing = new int[buckets.Count];
        for (var b = 0; b < buckets.Count; b++)
        {
            for (var i = 0; i < buckets[b].ParameterCount; i++)
            {
                bucketOf[buckets[b].FirstParameter + i] = b;
            }
        }

        requests = new Request?[buckets.Count];
        started = new long[buckets.Count];
        completed = new long[buckets.Count];
        Length = parameterLengths.Sum();
        compressed = compressor is null ? null : new CompressedBuckets(compressor, buckets, Length);
        Reset();
        if (progressThread)
        {
            ProgressThread = true;
            new Thread(ProgressLoop) { IsBackground = true, Name = "mpi-progress" }.Start();
        }
    }

    /// <summary>True when a thread of its own tests the buckets in flight (else only backward's callbacks do).</summary>
    public bool ProgressThread { get; }

    public string Name => compressed is null ? AllreduceExchange.ExchangeName : CompressedExchange.ExchangeName;

    /// <summary>The compressor the buckets go through; null: dense Allreduces.</summary>
    public IGradientCompressor? Compressor => compressed?.Compressor;

    /// <summary>The round the next <see cref="AverageGradients"/> is, as <see cref="CompressedExchange.Round"/> (every bucket
    /// of a round draws with it); meaningless without a compressor.</summary>
    public long Round
    {
        get => compressed?.Round ?? 0;
        set
        {
            if (compressed is not null)
            {
                compressed.Round = value;
            }
        }
    }

    public Communicator Group
    {
        get => whole.Group;
        set => whole.Group = value;
    }

    public ExchangeCounters Counters => whole.Counters;

    public IReadOnlyList<GradientBucket> Buckets => buckets;

    public long BucketBytes { get; }

    /// <summary>The flat buffer's length the plan was made for.</summary>
    public int Length { get; }

    /// <summary>The last round's buckets: when each started and when this rank saw it complete.</summary>
    public IReadOnlyList<BucketTiming> LastRound { get; private set; } = [];

    /// <summary>Before the backward whose hook reports into this exchange: nothing of the last round may be in flight.</summary>
    public void BeginStep()
    {
        if (stepOpen)
        {
            throw new InvalidOperationException("the overlapped exchange's previous step has buckets in flight; AverageGradients must finish it first");
        }

        Reset();
        stepOpen = true;
    }

    /// <summary>
    /// The gradient of <paramref name="parameter"/> is final in <paramref name="gradients"/> (the flat buffer, which
    /// must not move: MPI reads and writes it after this returns). Starts the buckets now complete, in order, and
    /// lets MPI progress the ones in flight.
    /// </summary>
    public void GradientReady(int parameter, Span<float> gradients)
    {
        if (!stepOpen)
        {
            return;
        }

        if ((uint)parameter >= (uint)parameterCount)
        {
            throw new ArgumentOutOfRangeException(nameof(parameter), parameter, $"the plan has {parameterCount} parameters");
        }

        RequireLength(gradients);
        var b = bucketOf[parameter];
        if (missing[b] == 0)
        {
            throw new InvalidOperationException($"parameter {parameter}'s gradient was reported twice in one step (bucket {b} is complete already)");
        }

        missing[b]--;
        // Encoding is this rank's own work on buckets not started yet: outside the lock, so the progress thread keeps
        // testing the buckets in flight meanwhile.
        EncodeReady(gradients);
        lock (gate)
        {
            while (nextToStart < buckets.Count && missing[nextToStart] == 0)
            {
                Start(nextToStart++, gradients);
            }

            Progress();
        }

        if (ProgressThread && nextToStart > 0 && !polling)
        {
            polling = true;
            wake.Set();
        }
    }

    /// <summary>Starts what backward did not, waits for every bucket, scales by 1/n: one training round.</summary>
    public void AverageGradients(Span<float> gradients)
    {
        RequireLength(gradients);
        var clock = Stopwatch.StartNew();
        for (var b = 0; b < buckets.Count; b++)
        {
            missing[b] = 0;             // what backward did not report is final now
        }

        EncodeReady(gradients);
        lock (gate)
        {
            // The progress thread stops here: from now on this thread waits (and tests) alone.
            polling = false;
            wake.Reset();
            if (progressError is { } error)
            {
                progressError = null;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
            }

            while (nextToStart < buckets.Count)
            {
                Start(nextToStart++, gradients);
            }
        }

        var idle = whole.Wait ?? IdleWait.Yield;
        long compressedBytes = 0;
        if (compressed is not null)
        {
            compressed.WaitAll(Group, idle, Completed);
            compressedBytes = compressed.Finish(gradients, Group.Size);
        }
        else
        {
            for (var b = 0; b < buckets.Count; b++)
            {
                if (requests[b] is { } request)
                {
                    request.WaitPolling(idle, $"MPI_Iallreduce (gradient bucket {b} of {buckets.Count})");
                    Completed(b);
                }
            }

            AllreduceExchange.Scale(gradients, 1f / Group.Size);
        }

        var exposed = clock.Elapsed.TotalSeconds;
        var timings = new BucketTiming[buckets.Count];
        for (var b = 0; b < buckets.Count; b++)
        {
            timings[b] = new BucketTiming(b, started[b], completed[b]);
        }

        LastRound = timings;
        var inFlight = buckets.Count == 0 ? 0 : Stopwatch.GetElapsedTime(started.Min(), completed.Max()).TotalSeconds;
        if (compressed is not null)
        {
            Counters.AddCompressedRound(compressedBytes, gradients.Length, Group.Size, exposed);
        }
        else
        {
            Counters.AddRound((long)gradients.Length * sizeof(float), Group.Size, exposed);
        }

        Counters.AddOverlap(exposed, inFlight);
        // A later call without BeginStep (no hook armed) then starts every bucket itself.
        Reset();
        stepOpen = false;
    }

    public void AverageModels(Span<float> parameters) => whole.AverageModels(parameters);

    public void AverageUncounted(Span<float> buffer) => whole.AverageUncounted(buffer);

    private void Start(int b, Span<float> gradients)
    {
        var bucket = buckets[b];
        started[b] = Stopwatch.GetTimestamp();
        if (compressed is not null)
        {
            compressed.Start(b, Group);
        }
        else
        {
            requests[b] = Group.IallreduceInPlace(gradients.Slice(bucket.Offset, bucket.Length), ReduceOp.Sum);
        }
    }

    /// <summary>With a compressor: encodes the buckets now complete, in order (the hook's thread, or the main one).</summary>
    private void EncodeReady(Span<float> gradients)
    {
        while (compressed is not null && nextToEncode < buckets.Count && missing[nextToEncode] == 0)
        {
            compressed.Encode(nextToEncode++, gradients);
        }
    }

    private void ProgressLoop()
    {
        while (true)
        {
            wake.Wait();
            while (polling)
            {
                lock (gate)
                {
                    if (!polling)
                    {
                        break;
                    }

                    try
                    {
                        Progress();
                    }
                    catch (Exception e)
                    {
                        // Rethrown on the main thread by AverageGradients; the thread stops testing this round.
                        progressError = e;
                        polling = false;
                        wake.Reset();
                        break;
                    }
                }

                Idle.Sleep(ProgressIntervalNanoseconds);
            }
        }
    }

    /// <summary>One MPI_Test per bucket in flight (caller holds the lock): MPI moves a nonblocking collective forward only inside its calls.</summary>
    private void Progress()
    {
        compressed?.Progress(Group);
        for (var b = 0; b < nextToStart; b++)
        {
            if (completed[b] == 0 && (compressed is not null ? compressed.Arrived(b) : requests[b] is { } request && request.Test(out _)))
            {
                Completed(b);
            }
        }
    }

    private void Completed(int b)
    {
        if (completed[b] == 0)
        {
            completed[b] = Stopwatch.GetTimestamp();
        }
    }

    private void Reset()
    {
        nextToStart = 0;
        nextToEncode = 0;
        compressed?.Reset();
        for (var b = 0; b < buckets.Count; b++)
        {
            missing[b] = buckets[b].ParameterCount;
            requests[b] = null;
            started[b] = 0;
            completed[b] = 0;
        }
    }

    private void RequireLength(Span<float> gradients)
    {
        if (gradients.Length != Length)
        {
            throw new ArgumentException($"the gradient buffer has {gradients.Length} elements but the bucket plan was made for {Length}", nameof(gradients));
        }
    }
}
