using System.Reflection;
using System.Runtime.InteropServices;

namespace MpiPipeline.Mpi;

/// <summary>
/// Finds and loads the MPI C library at run time and detects its ABI from what it exports (never by #if).
/// Order: the override variable <see cref="OverrideVariable"/> (a path or soname), then the launcher's
/// environment (Open MPI's mpirun vs the MPICH family's hydra/PMI), then a fallback list.
/// </summary>
internal static partial class MpiLibrary
{
    public const string OverrideVariable = "MPIPIPE_MPI_LIB";

    /// <summary>The name every [LibraryImport] in this assembly uses; the resolver maps it to the loaded handle.</summary>
    public const string ImportName = "mpi";

    private static readonly string[] MpichNames = ["libmpich.so.12", "libmpi.so.12", "libmpi_cray.so.12", "libmpich.so"];
    private static readonly string[] OpenMpiNames = ["libmpi.so.40", "libmpi.so"];

    private static readonly Lock Gate = new();
    private static nint handle;

    public static bool IsLoaded => handle != 0;
    public static nint Handle => handle != 0 ? handle : throw new InvalidOperationException("The MPI library is not loaded.");
    public static string Path { get; private set; } = "";
    public static AbiTable Table { get; private set; } = AbiTable.Mpich;

    /// <summary>What the process environment says about the launcher, for library choice and error messages.</summary>
    public static string LauncherFamily(IReadOnlyDictionary<string, string?> env)
    {
        if (env.ContainsKey("OMPI_COMM_WORLD_SIZE") || env.ContainsKey("OMPI_COMM_WORLD_RANK"))
        {
            return "openmpi";
        }

        if (env.ContainsKey("PMI_RANK") || env.ContainsKey("PMI_FD") || env.ContainsKey("HYDI_CONTROL_FD") || env.ContainsKey("PMI_SIZE"))
        {
            return "mpich";
        }

        return "none";
    }

    /// <summary>The ordered list of candidates to try for the given environment.</summary>
    public static IReadOnlyList<string> Candidates(IReadOnlyDictionary<string, string?> env)
    {
        if (env.TryGetValue(OverrideVariable, out var forced) && !string.IsNullOrWhiteSpace(forced))
        {
            return [forced];
        }

        return LauncherFamily(env) switch
        {
            "openmpi" => [.. OpenMpiNames, .. MpichNames],
            _ => [.. MpichNames, .. OpenMpiNames],
        };
    }

    public static IReadOnlyDictionary<string, string?> CurrentEnvironment()
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            env[(string)e.Key] = e.Value as string;
        }

        return env;
    }

    /// <summary>Loads the library (once) and builds its ABI table. Throws <see cref="MpiLibraryException"/> naming every path tried.</summary>
    public static void Load()
    {
        lock (Gate)
        {
            if (handle != 0)
            {
                return;
            }

            var env = CurrentEnvironment();
            var tried = new List<string>();
            foreach (var candidate in Candidates(env))
            {
                // RTLD_GLOBAL: Open MPI's plugins resolve libmpi's symbols from the global namespace.
                var h = Dl.Open(candidate, Dl.RtldNow | Dl.RtldGlobal);
                if (h == 0)
                {
                    tried.Add($"{candidate} ({Dl.LastError()})");
                    continue;
                }

                if (!NativeLibrary.TryGetExport(h, "MPI_Init_thread", out _))
                {
                    tried.Add($"{candidate} (loaded, but it exports no MPI_Init_thread: not an MPI library)");
                    continue;
                }

                handle = h;
                Path = Dl.PathOf(h, candidate);
                Table = DetectAbi(h);
                NativeLibrary.SetDllImportResolver(typeof(MpiLibrary).Assembly, Resolve);
                return;
            }

            var how = env.TryGetValue(OverrideVariable, out var forced) && !string.IsNullOrWhiteSpace(forced)
                ? $"{OverrideVariable} is set to '{forced}', which could not be used"
                : $"no MPI library could be loaded; set {OverrideVariable} to its path, or install MPICH or Open MPI (make deps)";
            throw new MpiLibraryException($"{how}. Tried: {string.Join("; ", tried)}");
        }
    }

    /// <summary>Open MPI exports its predefined handles as globals; the MPICH ABI has none.</summary>
    private static AbiTable DetectAbi(nint h)
    {
        if (!NativeLibrary.TryGetExport(h, "ompi_mpi_comm_world", out _))
        {
            return AbiTable.Mpich;
        }

        return AbiTable.OpenMpi(symbol => NativeLibrary.TryGetExport(h, symbol, out var address)
            ? address
            : throw new MpiLibraryException($"Open MPI library {Path} does not export {symbol}"));
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path) =>
        name == ImportName ? handle : 0;

    /// <summary>dlopen with RTLD_GLOBAL (NativeLibrary.Load uses a local namespace) and friends, from glibc.</summary>
    private static partial class Dl
    {
        public const int RtldNow = 0x2;
        public const int RtldGlobal = 0x100;
        private const int RtldDiLinkmap = 2;

        public static nint Open(string name, int flags) => dlopen(name, flags);

        public static string LastError()
        {
            var p = dlerror();
            return p == 0 ? "unknown dlopen error" : Marshal.PtrToStringUTF8(p) ?? "unknown dlopen error";
        }

        /// <summary>The file the dynamic linker actually loaded for this handle.</summary>
        public static unsafe string PathOf(nint h, string fallback)
        {
            nint linkMap = 0;
            if (dlinfo(h, RtldDiLinkmap, &linkMap) != 0 || linkMap == 0)
            {
                return fallback;
            }

            // struct link_map { ElfW(Addr) l_addr; char *l_name; ... }
            var name = Marshal.PtrToStringUTF8(*(nint*)(linkMap + sizeof(nint)));
            return string.IsNullOrEmpty(name) ? fallback : name;
        }

        [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
        private static partial nint dlopen(string file, int mode);

        [LibraryImport("libc.so.6")]
        private static partial nint dlerror();

        [LibraryImport("libc.so.6")]
        private static unsafe partial int dlinfo(nint handle, int request, void* info);
    }
}

/// <summary>The MPI library could not be found or loaded.</summary>
public sealed class MpiLibraryException(string message) : Exception(message);
