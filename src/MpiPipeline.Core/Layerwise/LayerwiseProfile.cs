using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace MpiPipeline.Layerwise;

/// <summary>
/// A diagnostic breakdown of the layer-wise engine's training steps (<see cref="Variable"/>=1): per part (each layer's
/// forward and backward, the transfers into it, the gradient sync, the guard, the optimizer) the wall time and this
/// thread's CPU time. CPU time is what separates a cost of the engine from time lost to other processes on a loaded
/// machine: a part whose wall time far exceeds its CPU time waited (for the core, or in MPI for a slower peer), a part
/// whose CPU time exceeds the cost model's measured layer time is slower in the engine than in isolation.
/// </summary>
internal sealed partial class LayerwiseProfile
{
    public const string Variable = "MPIPIPE_LAYERWISE_PROFILE";

    private readonly Dictionary<string, (double Wall, double Cpu)> parts = new(StringComparer.Ordinal);
    private readonly List<string> order = [];

    /// <summary>A profile when <see cref="Variable"/> is 1, else null (the engine then measures nothing extra).</summary>
    public static LayerwiseProfile? FromEnvironment() => Environment.GetEnvironmentVariable(Variable) == "1" ? new LayerwiseProfile() : null;

    /// <summary>Now, on both clocks.</summary>
    public static (long Wall, double Cpu) Now() => (Stopwatch.GetTimestamp(), ThreadCpuSeconds());

    /// <summary>Adds the time since <paramref name="start"/> to <paramref name="part"/>.</summary>
    public void Add(string part, (long Wall, double Cpu) start)
    {
        var wall = Stopwatch.GetElapsedTime(start.Wall).TotalSeconds;
        var cpu = ThreadCpuSeconds() - start.Cpu;
        if (!parts.TryGetValue(part, out var sum))
        {
            order.Add(part);
        }

        parts[part] = (sum.Wall + wall, sum.Cpu + cpu);
    }

    /// <summary>Milliseconds per step of every part, wall / CPU, in the order the parts first ran.</summary>
    public string Describe(long steps)
    {
        var text = new StringBuilder();
        var (wall, cpu) = (0.0, 0.0);
        foreach (var part in order)
        {
            var (w, c) = parts[part];
            (wall, cpu) = (wall + w, cpu + c);
            text.Append(CultureInfo.InvariantCulture, $"\n  {part,-40} {1000 * w / steps,9:F2} {1000 * c / steps,9:F2}");
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"layer-wise profile, ms per step over {steps} steps (wall, this thread's CPU):{text}\n  {"sum",-40} {1000 * wall / steps,9:F2} {1000 * cpu / steps,9:F2}");
    }

    private static double ThreadCpuSeconds()
    {
        const int ThreadCpuClock = 3;   // CLOCK_THREAD_CPUTIME_ID
        return ClockGetTime(ThreadCpuClock, out var time) == 0 ? time.Seconds + (time.Nanoseconds * 1e-9) : 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);
}
