using System.Runtime.InteropServices;

namespace MpiPipeline.TorchSharp;

/// <summary>
/// glibc malloc settings for a libtorch process, as the project's bridge sets them at load: in a .NET process glibc
/// keeps its 128 KiB mmap threshold (the dynamic threshold does not grow there), so every activation and gradient
/// tensor libtorch allocates per step is a fresh mmap, page-faulted in and unmapped after: a TorchSharp cnn step ran
/// about twice as long that way (bench/results/torchsharp.md). Raising the mmap threshold to 64 MiB and the trim
/// threshold to 128 MiB keeps those blocks in the heap for the next step. A variable the user set
/// (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_) is left to glibc. Process-wide: <see cref="DataParallel"/> applies
/// it unless <see cref="DataParallelOptions.TuneMalloc"/> is false; a program that trains without it calls
/// <see cref="Apply"/> itself.
/// </summary>
public static partial class MallocTuning
{
    public const int MmapThresholdBytes = 64 << 20;
    public const int TrimThresholdBytes = 128 << 20;

    // mallopt's parameter numbers (malloc.h).
    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;

    private static readonly Lock Gate = new();
    private static string? applied;

    /// <summary>
    /// Sets both thresholds once per process (later calls return the first result): what was done, e.g. "mmap
    /// threshold 64 MiB, trim threshold 128 MiB", "left to the environment", or "not glibc".
    /// </summary>
    public static string Apply()
    {
        lock (Gate)
        {
            return applied ??= Set();
        }
    }

    private static string Set()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "not Linux: malloc left as it is";
        }

        try
        {
            var parts = new List<string>();
            if (Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is null)
            {
                parts.Add(mallopt(MMmapThreshold, MmapThresholdBytes) == 1 ? $"mmap threshold {MmapThresholdBytes >> 20} MiB" : "mmap threshold refused");
            }

            if (Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is null)
            {
                parts.Add(mallopt(MTrimThreshold, TrimThresholdBytes) == 1 ? $"trim threshold {TrimThresholdBytes >> 20} MiB" : "trim threshold refused");
            }

            return parts.Count == 0 ? "left to the environment (MALLOC_*_ set)" : string.Join(", ", parts);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return "no glibc mallopt: malloc left as it is";
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int parameter, int value);
}
