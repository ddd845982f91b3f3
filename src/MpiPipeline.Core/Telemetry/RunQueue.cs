using System.Globalization;

namespace MpiPipeline.Telemetry;

/// <summary>
/// The calling thread's scheduler accounting (Linux <c>/proc/thread-self/schedstat</c>): nanoseconds it ran on a core
/// and nanoseconds it was runnable but waited for one. A timing taken on a shared machine is the run's own when its
/// threads did not wait: the load average cannot say that, since it counts every runnable process, including work
/// at a lower priority that yields the core whenever the measured run wants it.
/// </summary>
internal readonly record struct RunQueueSample(long RunNanoseconds, long WaitNanoseconds)
{
    /// <summary>Now, for the calling thread; null where the kernel does not expose it.</summary>
    public static RunQueueSample? Read()
    {
        try
        {
            var fields = File.ReadAllText("/proc/thread-self/schedstat").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length >= 2
                && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var run)
                && long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var wait)
                ? new RunQueueSample(run, wait)
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The share of the time between two samples of one thread that it wanted a core and had to wait: wait / (run +
    /// wait), in [0, 1]; null when either sample is missing or the thread neither ran nor waited (it slept throughout).
    /// </summary>
    public static double? WaitShare(RunQueueSample? before, RunQueueSample? after)
    {
        if (before is not { } b || after is not { } a)
        {
            return null;
        }

        var run = a.RunNanoseconds - b.RunNanoseconds;
        var wait = a.WaitNanoseconds - b.WaitNanoseconds;
        return run + wait <= 0 ? null : (double)wait / (run + wait);
    }
}

/// <summary>
/// A thread's run-queue wait share over a span of work (<see cref="RunQueueSample.WaitShare"/>) that leaves out the
/// phases in which it is idle on purpose: a worker with nothing to do that yields its core or sleeps asked to wait, and
/// with other runnable work on the machine a yield shows up as run-queue time. <see cref="Idle"/> before such a phase,
/// <see cref="Working"/> after it (a null check while working, so it costs nothing in a hot loop).
/// </summary>
internal sealed class WorkingWaitShare
{
    private readonly RunQueueSample? start = RunQueueSample.Read();
    private RunQueueSample? idleSince;
    private long idleRun;
    private long idleWait;

    public void Idle()
    {
        if (start is not null && idleSince is null)
        {
            idleSince = RunQueueSample.Read();
        }
    }

    public void Working()
    {
        if (idleSince is { } since && RunQueueSample.Read() is { } now)
        {
            idleRun += now.RunNanoseconds - since.RunNanoseconds;
            idleWait += now.WaitNanoseconds - since.WaitNanoseconds;
        }

        idleSince = null;
    }

    /// <summary>The share so far, idle phases left out; null where the kernel does not say.</summary>
    public double? Share()
    {
        Working();
        return start is { } s && RunQueueSample.Read() is { } now
            ? RunQueueSample.WaitShare(s, new RunQueueSample(now.RunNanoseconds - idleRun, now.WaitNanoseconds - idleWait))
            : null;
    }
}
