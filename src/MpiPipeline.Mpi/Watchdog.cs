using System.Globalization;

namespace MpiPipeline.Mpi;

/// <summary>
/// The stall inspector (after Horovod's): every blocking MPI call, and every polled wait, marks when it started; a
/// background thread reports a call that has been blocked longer than the warning time (default 60 s;
/// MPIPIPE_STALL_WARN_SECONDS) and aborts the job after the abort time (default 600 s; MPIPIPE_STALL_ABORT_SECONDS),
/// so a rank that waits for a peer that will never come (stopped, or in a different collective) is reported and the
/// job ends instead of hanging until the allocation runs out. 0 turns either off.
/// </summary>
internal static class Watchdog
{
    public const string WarnVariable = "MPIPIPE_STALL_WARN_SECONDS";
    public const string AbortVariable = "MPIPIPE_STALL_ABORT_SECONDS";
    public const double DefaultWarnSeconds = 60;

    /// <summary>
    /// Ten minutes in one MPI call: far above any wait a working job has (a peer's data loading, an evaluation, a slow
    /// step on an oversubscribed node), and it still ends a job whose peer stopped long before the allocation does.
    /// </summary>
    public const double DefaultAbortSeconds = 600;

    /// <summary>No peer rank: a collective, or a point-to-point call without that direction.</summary>
    public const int NoPeer = int.MinValue;

    // What the current call waits for, kept as plain values so that entering a call allocates nothing; the message is
    // built only when a stall is reported. The inspector thread may read a mix of two calls' values: a message only.
    private static string? operation;
    private static int fromRank = NoPeer;
    private static int toRank = NoPeer;
    private static int ranks;
    private static bool world;
    private static long startedTicks;
    private static long reportedTicks;
    private static int aborting;
    private static Timer? timer;
    private static double warnSeconds;
    private static double abortSeconds;
    private static Action<string>? report;
    private static Action? abort;

    /// <summary>Reads the two variables (a bad value is one <see cref="InputException"/>) and starts the inspector.</summary>
    public static void Start(Action<string> onStall, Action onAbort)
    {
        (warnSeconds, abortSeconds) = ReadSettings(Environment.GetEnvironmentVariable);
        report = onStall;
        abort = onAbort;
        if (warnSeconds > 0 || abortSeconds > 0)
        {
            var period = TimeSpan.FromSeconds(Math.Clamp(Math.Min(Positive(warnSeconds), Positive(abortSeconds)) / 4, 0.05, 5));
            timer = new Timer(_ => Inspect(), null, period, period);
        }
    }

    public static void Stop()
    {
        timer?.Dispose();
        timer = null;
    }

    /// <summary>
    /// Marks the start of a blocking call (or polled wait) on <paramref name="communicator"/>; dispose the result when
    /// it returns. <paramref name="from"/> and <paramref name="to"/> are the peers of a point-to-point call in the
    /// communicator's numbering; a collective has neither.
    /// </summary>
    public static Scope Enter(string name, Communicator? communicator = null, int from = NoPeer, int to = NoPeer)
    {
        operation = name;
        fromRank = from;
        toRank = to;
        ranks = communicator?.Size ?? 0;
        world = communicator?.IsWorld ?? false;
        Volatile.Write(ref startedTicks, Environment.TickCount64);
        return default;
    }

    /// <summary>
    /// As <see cref="Enter"/>, for a polled wait on several peers that started earlier: <paramref name="sinceTicks"/>
    /// (<see cref="Environment.TickCount64"/>) is when <paramref name="from"/>, the peer silent the longest, was last
    /// heard. A master that keeps hearing from the other peers is still reported (and aborted) for the silent one.
    /// </summary>
    public static Scope EnterSince(string name, Communicator? communicator, int from, long sinceTicks)
    {
        operation = name;
        fromRank = from;
        toRank = NoPeer;
        ranks = communicator?.Size ?? 0;
        world = communicator?.IsWorld ?? false;
        Volatile.Write(ref startedTicks, Math.Max(1, sinceTicks));
        return default;
    }

    internal readonly struct Scope : IDisposable
    {
        public void Dispose() => Volatile.Write(ref startedTicks, 0);
    }

    /// <summary>
    /// What the call waits for, as " (...)" after the time, or "": the peer ranks of a point-to-point call (numbered in the world, or in a smaller
    /// communicator of <paramref name="size"/> ranks). For a collective, which ranks have not arrived is unknown to this
    /// rank: every rank's watchdog reports its own call, so the missing ones are those that report another call or none.
    /// </summary>
    internal static string Peers(int from, int to, int size, bool isWorld)
    {
        var of = size == 0 || isWorld ? "" : $" of a {size}-rank communicator";
        var peers = new List<string>(2);
        if (from != NoPeer)
        {
            // A negative source is MPI_ANY_SOURCE (its value differs between the ABIs; PROC_NULL never blocks).
            peers.Add(from < 0 ? $"waiting for any rank{of}" : $"waiting for rank {from}{of}");
        }

        if (to != NoPeer)
        {
            peers.Add($"sending to rank {to}{of}");
        }

        if (peers.Count == 0 && size > 0)
        {
            peers.Add(isWorld ? $"collective over all {size} ranks" : $"collective over the {size} ranks of a communicator");
        }

        return peers.Count == 0 ? "" : $" ({string.Join(", ", peers)})";
    }

    /// <summary>The warning and abort times in seconds (0 = never) from the environment; a bad value is an input error.</summary>
    internal static (double Warn, double Abort) ReadSettings(Func<string, string?> environment) =>
        (ReadSeconds(environment, WarnVariable, DefaultWarnSeconds), ReadSeconds(environment, AbortVariable, DefaultAbortSeconds));

    private static void Inspect()
    {
        var started = Volatile.Read(ref startedTicks);
        if (started == 0)
        {
            return;
        }

        var seconds = (Environment.TickCount64 - started) / 1000.0;
        if (abortSeconds > 0 && seconds >= abortSeconds)
        {
            if (Interlocked.Exchange(ref aborting, 1) != 0)
            {
                return;
            }

            report?.Invoke($"blocked in {Current(seconds)}, over {AbortVariable}={abortSeconds}: aborting the job");
            // MPI_Abort tears down the launcher's pipes: give it a moment to forward the message first (a peer that
            // stalls at the same moment would otherwise kill this rank before its text is out).
            Thread.Sleep(MpiRuntime.OutputGracePeriod);
            abort?.Invoke();
            return;
        }

        if (warnSeconds > 0 && seconds >= warnSeconds && Interlocked.Exchange(ref reportedTicks, started) != started)
        {
            var then = abortSeconds > 0 ? $"the job is aborted at {abortSeconds} s ({AbortVariable})" : $"{AbortVariable}=0: waiting forever";
            report?.Invoke($"blocked in {Current(seconds)}: a peer rank may have stopped or be in a different collective ({WarnVariable}={warnSeconds}; {then})");
        }
    }

    private static string Current(double seconds) =>
        $"{operation ?? "an MPI call"} for {seconds:F0} s{Peers(fromRank, toRank, ranks, world)}";

    private static double Positive(double value) => value > 0 ? value : double.MaxValue;

    private static double ReadSeconds(Func<string, string?> environment, string variable, double fallback)
    {
        var text = environment(variable);
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback;
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && seconds >= 0
            ? seconds
            : throw new InputException($"{variable}='{text}' is not a number of seconds: give a number >= 0 (0 = never; default {fallback}).");
    }
}
