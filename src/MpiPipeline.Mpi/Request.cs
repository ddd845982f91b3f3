using System.Buffers;

namespace MpiPipeline.Mpi;

/// <summary>How a polling wait (<see cref="Request.WaitPolling"/>) spends the time between two polls.</summary>
public enum IdleWait
{
    /// <summary>sched_yield: the core goes to another runnable process, if any, and comes straight back otherwise.
    /// The lowest latency when every rank has a core of its own.</summary>
    Yield,

    /// <summary>A few yields, then nanosleep from 10 us doubling up to 100 us (plus the kernel's timer slack, 50 us by
    /// default): the waiting rank leaves the run queue, so ranks that share a core (more ranks than cores) compute
    /// without it; costs up to ~0.15 ms of latency per wait.</summary>
    Sleep,
}

/// <summary>
/// A nonblocking operation in flight. It owns the pins of its buffers (a collective's count and displacement arrays
/// too): the memory stays fixed until the request completes (Wait, a successful Test, or WaitAll), then the pins are
/// released.
/// </summary>
public sealed class Request
{
    private nint handle;
    private MemoryHandle pin;
    private MemoryHandle[]? morePins;
    private readonly bool isReceive;
    private Status? completed;

    // What a wait on this request waits for, for the stall watchdog's message.
    private readonly Communicator? communicator;
    private readonly int from;
    private readonly int to;

    internal Request(nint handle, MemoryHandle pin, bool isReceive, Communicator? communicator = null,
        int from = Watchdog.NoPeer, int to = Watchdog.NoPeer)
    {
        this.handle = handle;
        this.pin = pin;
        this.isReceive = isReceive;
        this.communicator = communicator;
        this.from = from;
        this.to = to;
    }

    /// <summary>A collective's request over several buffers, each pinned by one of <paramref name="pins"/>.</summary>
    internal Request(nint handle, MemoryHandle[] pins, Communicator communicator)
        : this(handle, default, isReceive: false, communicator)
    {
        morePins = pins;
    }

    public bool IsCompleted => completed is not null;

    /// <summary>A request that is already complete (MPI_REQUEST_NULL): a slot of an any-of-many wait with nothing posted.</summary>
    public static Request Inactive() => new(MpiLibrary.Table.RequestNull, default, isReceive: true) { completed = default(Status) };

    /// <summary>Blocks until the operation completes.</summary>
    public unsafe Status Wait()
    {
        if (completed is { } done)
        {
            return done;
        }

        var status = stackalloc byte[Status.MaxNativeSize];
        var h = handle;
        using (Watchdog.Enter(isReceive ? "MPI_Wait (MPI_Irecv)" : "MPI_Wait (MPI_Isend)", communicator, from, to))
        {
            MpiException.Check(NativeMethods.MPI_Wait(&h, status));
        }

        return Complete(ReadStatus(status));
    }

    /// <summary>
    /// Blocks until the operation completes, polling with MPI_Test and, after the first few polls, giving the core away
    /// between polls as <paramref name="idle"/> says. MPI_Wait busy-polls: with more ranks than cores (or a loaded node)
    /// a rank waiting for its neighbour takes the core the neighbour needs to produce the message. Watched by the stall
    /// watchdog, which names <paramref name="operation"/> (default: the request's kind) and the peer if the wait stalls.
    /// </summary>
    public Status WaitPolling(IdleWait idle = IdleWait.Yield, string? operation = null)
    {
        if (completed is { } done)
        {
            return done;
        }

        var backoff = new PollBackoff(idle);
        operation ??= isReceive ? "MPI_Irecv (polling wait)" : "MPI_Isend (polling wait)";
        using (Watchdog.Enter(operation, communicator, from, to))
        {
            Status status;
            while (!Test(out status))
            {
                backoff.Pause();
            }

            return status;
        }
    }

    /// <summary>True (with the status) when the operation has completed; never blocks.</summary>
    public unsafe bool Test(out Status result)
    {
        if (completed is { } done)
        {
            result = done;
            return true;
        }

        var status = stackalloc byte[Status.MaxNativeSize];
        var h = handle;
        var flag = 0;
        MpiException.Check(NativeMethods.MPI_Test(&h, &flag, status));
        if (flag == 0)
        {
            result = default;
            return false;
        }

        result = Complete(ReadStatus(status));
        return true;
    }

    /// <summary>Waits for all of them with one MPI_Waitall; returns their statuses in order.</summary>
    public static unsafe Status[] WaitAll(params ReadOnlySpan<Request> requests)
    {
        var table = MpiLibrary.Table;
        var n = requests.Length;
        var handles = new byte[Math.Max(n, 1) * table.HandleSize];
        var statuses = new byte[Math.Max(n, 1) * table.StatusSize];
        var results = new Status[n];
        fixed (byte* h = handles)
        fixed (byte* s = statuses)
        {
            for (var i = 0; i < n; i++)
            {
                var r = requests[i];
                var value = r.completed is null ? r.handle : table.RequestNull;
                if (table.HandleSize == 4)
                {
                    ((int*)h)[i] = (int)value;
                }
                else
                {
                    ((nint*)h)[i] = value;
                }
            }

            // Several peers, possibly on several communicators: the message names the call and the count.
            using (Watchdog.Enter(n == 1 ? "MPI_Waitall (1 request)" : $"MPI_Waitall ({n} requests)"))
            {
                MpiException.Check(NativeMethods.MPI_Waitall(n, h, s));
            }

            for (var i = 0; i < n; i++)
            {
                var r = requests[i];
                results[i] = r.completed ?? r.Complete(r.ReadStatus(s + (i * table.StatusSize)));
            }
        }

        return results;
    }

    /// <summary>
    /// MPI_Waitany: blocks until one of <paramref name="requests"/> completes; returns its index and status, or -1
    /// when none is active (all completed before). The stall watchdog names the call and the count.
    /// </summary>
    public static unsafe (int Index, Status Status) WaitAny(IReadOnlyList<Request> requests)
    {
        using (Watchdog.Enter($"MPI_Waitany ({requests.Count} requests)"))
        {
            return Any(requests, wait: true, out var index, out var status) ? (index, status) : (-1, default);
        }
    }

    /// <summary>
    /// MPI_Testany: true with the index and status of one completed request of <paramref name="requests"/>; false
    /// when none has completed yet. Never blocks. False too when none is active (all completed before).
    /// </summary>
    public static bool TestAny(IReadOnlyList<Request> requests, out int index, out Status status) =>
        Any(requests, wait: false, out index, out status) && index >= 0;

    /// <summary>
    /// Blocks until one of <paramref name="requests"/> completes, polling with MPI_Testany and giving the core away
    /// between polls as <see cref="WaitPolling"/> does. Request i comes from peer <paramref name="peers"/>[i], last
    /// heard at <paramref name="lastHeardTicks"/>[i] (<see cref="Environment.TickCount64"/>): the stall watchdog
    /// watches the incomplete request whose peer has been silent the longest, from that time, so a peer that stopped
    /// is named (and the job aborted) even while the others keep the waiting rank busy. Returns the index and status.
    /// </summary>
    public static (int Index, Status Status) WaitAnyPolling(IReadOnlyList<Request> requests, IReadOnlyList<int> peers,
        IReadOnlyList<long> lastHeardTicks, Communicator communicator, IdleWait idle = IdleWait.Yield, string operation = "MPI_Testany (polling wait)")
    {
        var silent = -1;
        for (var i = 0; i < requests.Count; i++)
        {
            if (!requests[i].IsCompleted && (silent < 0 || lastHeardTicks[i] < lastHeardTicks[silent]))
            {
                silent = i;
            }
        }

        if (silent < 0)
        {
            throw new InvalidOperationException("WaitAnyPolling: no request is active");
        }

        var backoff = new PollBackoff(idle);
        using (Watchdog.EnterSince(operation, communicator, peers[silent], lastHeardTicks[silent]))
        {
            int index;
            Status status;
            while (!TestAny(requests, out index, out status))
            {
                backoff.Pause();
            }

            return (index, status);
        }
    }

    /// <summary>One MPI_Waitany or MPI_Testany over the requests (completed ones passed as MPI_REQUEST_NULL);
    /// false when nothing completed (Testany) ; index -1 when none was active.</summary>
    private static unsafe bool Any(IReadOnlyList<Request> requests, bool wait, out int index, out Status status)
    {
        var table = MpiLibrary.Table;
        var n = requests.Count;
        var handles = stackalloc byte[Math.Max(n, 1) * table.HandleSize];
        var native = stackalloc byte[Status.MaxNativeSize];
        for (var i = 0; i < n; i++)
        {
            var r = requests[i];
            var value = r.completed is null ? r.handle : table.RequestNull;
            if (table.HandleSize == 4)
            {
                ((int*)handles)[i] = (int)value;
            }
            else
            {
                ((nint*)handles)[i] = value;
            }
        }

        var found = 0;
        var flag = 0;
        MpiException.Check(wait
            ? NativeMethods.MPI_Waitany(n, handles, &found, native)
            : NativeMethods.MPI_Testany(n, handles, &found, &flag, native));
        if (!wait && flag == 0)
        {
            (index, status) = (-1, default);
            return false;
        }

        if (found == AbiTable.Undefined)
        {
            (index, status) = (-1, default);
            return true;
        }

        var done = requests[found];
        (index, status) = (found, done.Complete(done.ReadStatus(native)));
        return true;
    }

    /// <summary>A send's status is undefined by the standard: only receives report source, tag and size.</summary>
    private unsafe Status ReadStatus(byte* native) => isReceive ? Status.Read(native) : default;

    private Status Complete(Status status)
    {
        completed = status;
        handle = MpiLibrary.Table.RequestNull;
        pin.Dispose();
        pin = default;
        if (morePins is { } pins)
        {
            foreach (var p in pins)
            {
                p.Dispose();
            }

            morePins = null;
        }
        return status;
    }
}

/// <summary>
/// Between two unsuccessful polls: spin for the first 20, then yield the core, and with <see cref="IdleWait.Sleep"/>
/// after 10 yields sleep, doubling from 10 us to at most 100 us (a message that takes longer is not worth the polls).
/// </summary>
internal struct PollBackoff(IdleWait idle)
{
    private const int PollsBeforeYield = 20;
    private const int YieldsBeforeSleep = 10;
    private const long FirstSleepNs = 10_000, LongestSleepNs = 100_000;

    private int polls;
    private long sleepNs;

    public void Pause()
    {
        if (++polls <= PollsBeforeYield)
        {
            return;
        }

        if (idle == IdleWait.Sleep && polls > PollsBeforeYield + YieldsBeforeSleep)
        {
            sleepNs = Math.Min(sleepNs == 0 ? FirstSleepNs : 2 * sleepNs, LongestSleepNs);
            Idle.Sleep(sleepNs);
        }
        else
        {
            Thread.Yield();
        }
    }
}
