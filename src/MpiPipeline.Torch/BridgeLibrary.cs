using System.Collections;
using System.Reflection;
using System.Runtime.InteropServices;

namespace MpiPipeline.Torch;

/// <summary>
/// Finds and loads <c>libmpp_bridge.so</c> once per process, checks its ABI version, and initializes it (malloc
/// tuning, thread count). Order: <see cref="OverrideVariable"/> (a path, e.g. the CUDA build of <c>make bridge-cuda</c>),
/// then the program's directory, then this assembly's directory. A failure is kept and thrown again, with the
/// same message, by every later use.
/// </summary>
internal static class BridgeLibrary
{
    /// <summary>The name every [LibraryImport] in this assembly uses; the resolver maps it to the loaded handle.</summary>
    public const string ImportName = "mpp_bridge";

    public const string FileName = "libmpp_bridge.so";

    public const string OverrideVariable = "MPIPIPE_TORCH_BRIDGE";

    public const string ThreadsVariable = "MPIPIPE_TORCH_THREADS";

    /// <summary>MPP_BRIDGE_VERSION of the native/mpp_bridge.h this assembly was written against.</summary>
    public const int ExpectedVersion = 7;

    private static readonly Lock Gate = new();
    private static nint handle;
    private static TorchException? failure;

    public static string Path { get; private set; } = "";

    public static int Version { get; private set; }

    /// <summary>Loads the bridge if that has not happened yet; throws <see cref="TorchException"/> saying why it cannot be used.</summary>
    public static void EnsureLoaded()
    {
        if (Volatile.Read(ref handle) != 0)
        {
            return;
        }

        lock (Gate)
        {
            if (handle == 0 && failure is null)
            {
                try
                {
                    Load();
                }
                catch (TorchException ex)
                {
                    failure = ex;
                }
            }

            if (failure is not null)
            {
                throw new TorchException(failure.Function, failure.Status, failure.NativeMessage);
            }
        }
    }

    /// <summary>Where to look, in order.</summary>
    public static IReadOnlyList<string> Candidates(IReadOnlyDictionary<string, string?> env)
    {
        if (env.TryGetValue(OverrideVariable, out var forced) && !string.IsNullOrWhiteSpace(forced))
        {
            return [System.IO.Path.GetFullPath(forced)];
        }

        var assemblyDirectory = System.IO.Path.GetDirectoryName(typeof(BridgeLibrary).Assembly.Location);
        return new[] { AppContext.BaseDirectory, assemblyDirectory }
            .Where(d => !string.IsNullOrEmpty(d))
            .Select(d => System.IO.Path.GetFullPath(System.IO.Path.Combine(d!, FileName)))
            .Distinct()
            .ToList();
    }

    /// <summary>A bridge of another ABI version would misread arguments: refuse it, saying what to do.</summary>
    public static void CheckVersion(int found, string path)
    {
        if (found != ExpectedVersion)
        {
            throw new TorchException("load", BridgeStatus.NotLoaded,
                $"{path} is bridge ABI version {found}, but this build of MpiPipeline.Torch expects version {ExpectedVersion}; " +
                $"rebuild it (make build) or point {OverrideVariable} at a matching build");
        }
    }

    /// <summary>
    /// Intra-op threads when nothing sets them: <see cref="ThreadsVariable"/>, else the cores this process may use
    /// divided by the ranks the launcher put on this node (libtorch's own default here is 1: cpuinfo sees one core).
    /// </summary>
    public static int DefaultThreads(IReadOnlyDictionary<string, string?> env, int processorCount)
    {
        if (EnvironmentThreads(env) is int threads)
        {
            return threads;
        }

        // The launchers' own variables are taken where they make sense; ours is the user's word, so a bad value is an error.
        if (env.TryGetValue("MPIPIPE_LOCAL_RANKS", out var given) && !string.IsNullOrEmpty(given) && !(int.TryParse(given, out var local) && local > 0))
        {
            throw new InputException($"MPIPIPE_LOCAL_RANKS='{given}' is not a positive integer (ranks on this node)");
        }

        var ranksOnNode = 1;
        foreach (var variable in new[] { "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MPIPIPE_LOCAL_RANKS" })
        {
            if (env.TryGetValue(variable, out var value) && int.TryParse(value, out var n) && n > 0)
            {
                ranksOnNode = n;
                break;
            }
        }

        return Math.Max(1, processorCount / ranksOnNode);
    }

    /// <summary>The threads <see cref="ThreadsVariable"/> asks for; null when it is unset or empty.</summary>
    public static int? EnvironmentThreads(IReadOnlyDictionary<string, string?> env)
    {
        if (!env.TryGetValue(ThreadsVariable, out var text) || string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        return int.TryParse(text, out var threads) && threads > 0
            ? threads
            : throw new InputException($"{ThreadsVariable}='{text}' is not a positive integer");
    }

    /// <summary>This process's <see cref="EnvironmentThreads(IReadOnlyDictionary{string, string?})"/>.</summary>
    public static int? EnvironmentThreads() => EnvironmentThreads(CurrentEnvironment());

    private static unsafe void Load()
    {
        var env = CurrentEnvironment();
        var candidates = Candidates(env);
        if (env.TryGetValue(OverrideVariable, out var forced) && !string.IsNullOrWhiteSpace(forced) && !File.Exists(candidates[0]))
        {
            // The user's setting, the same on every rank: one message, from rank 0, not one per rank.
            throw new InputException($"{OverrideVariable} is set to '{forced}', which does not exist; give the path of a built {FileName} " +
                "('make build' builds it under build/native) or unset it");
        }

        var path = candidates.FirstOrDefault(File.Exists) ?? throw new TorchException("load", BridgeStatus.NotLoaded,
            $"{FileName} not found (looked at {string.Join(", ", candidates)}); build it with 'make build', " +
            $"or set {OverrideVariable} to its path");
        var h = NativeMethods.Dl.dlopen(path, NativeMethods.Dl.RtldNow);
        if (h == 0)
        {
            var reason = Marshal.PtrToStringUTF8(NativeMethods.Dl.dlerror()) ?? "unknown dlopen error";
            var hint = reason.Contains("libtorch", StringComparison.Ordinal) || reason.Contains("libc10", StringComparison.Ordinal)
                ? "; libtorch is missing (install libtorch-dev: make deps)"
                : "";
            throw new TorchException("load", BridgeStatus.NotLoaded, $"cannot load {path}: {reason}{hint}");
        }

        if (!NativeLibrary.TryGetExport(h, "mpp_bridge_version", out var versionFunction))
        {
            throw new TorchException("load", BridgeStatus.NotLoaded, $"{path} exports no mpp_bridge_version: not the MpiPipeline bridge");
        }

        var version = ((delegate* unmanaged<int>)versionFunction)();
        CheckVersion(version, path);
        NativeLibrary.SetDllImportResolver(typeof(BridgeLibrary).Assembly, Resolve);
        Path = path;
        Version = version;
        var threads = DefaultThreads(env, Environment.ProcessorCount);
        Volatile.Write(ref handle, h);
        TorchException.Check(NativeMethods.mpp_runtime_init(threads));
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == ImportName ? handle : 0;

    private static Dictionary<string, string?> CurrentEnvironment()
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            env[(string)e.Key] = e.Value as string;
        }

        return env;
    }
}
