namespace MpiPipeline.Mpi;

/// <summary>
/// The stall inspector (after Horovod's): every blocking MPI call marks when it started; a background thread
/// reports a call that has been blocked longer than the warning time (default 60 s; MPIPIPE_STALL_WARN_SECONDS,
/// 0 turns it off) and, if MPIPIPE_STALL_ABORT_SECONDS is set, aborts the job after that long, so a rank that waits
/// for a peer that will never come is reported instead of hanging silently.
/// </summary>
internal static class Watchdog
{
    public const string WarnVariable = "MPIPIPE_STALL_WARN_SECONDS";
    public const string AbortVariable = "MPIPIPE_STALL_ABORT_SECONDS";

    private static string? operation;
    private static long startedTicks;
    private static long reportedTicks;
    private static int aborting;
    private static Timer? timer;
    private static double warnSeconds;
    private static double abortSeconds;
    private static Action<string>? report;
    private static Action? abort;

    public static void Start(Action<string> onStall, Action onAbort)
    {
        warnSeconds = ReadSeconds(WarnVariable, 60);
        abortSeconds = ReadSeconds(AbortVariable, 0);
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

    /// <summary>Marks the start of a blocking call; dispose the result when it returns.</summary>
    public static Scope Enter(string name)
    {
        operation = name;
        Volatile.Write(ref startedTicks, Environment.TickCount64);
        return default;
    }

    internal readonly struct Scope : IDisposable
    {
        public void Dispose() => Volatile.Write(ref startedTicks, 0);
    }

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

            report?.Invoke($"blocked in {operation} for {seconds:F0} s (over {AbortVariable}={abortSeconds}); aborting the job");
            // MPI_Abort tears down the launcher's pipes: give it a moment to forward the message first (a peer that
            // stalls at the same moment would otherwise kill this rank before its text is out).
            Thread.Sleep(MpiRuntime.OutputGracePeriod);
            abort?.Invoke();
            return;
        }

        if (warnSeconds > 0 && seconds >= warnSeconds && Interlocked.Exchange(ref reportedTicks, started) != started)
        {
            report?.Invoke($"blocked in {operation} for {seconds:F0} s: a peer rank may have stopped or be in a different collective ({WarnVariable}={warnSeconds})");
        }
    }

    private static double Positive(double value) => value > 0 ? value : double.MaxValue;

    private static double ReadSeconds(string variable, double fallback)
    {
        var text = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrWhiteSpace(text) ? fallback
            : double.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 0 ? v
            : throw new ArgumentException($"{variable}='{text}' is not a non-negative number of seconds");
    }
}
