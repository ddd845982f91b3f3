using System.Runtime.InteropServices;

namespace MpiPipeline.Torch;

/// <summary>Process-wide libtorch facts and settings. Every member loads the bridge first (see <see cref="BridgeLibrary"/>).</summary>
public static class TorchRuntime
{
    public static unsafe string LibtorchVersion
    {
        get
        {
            BridgeLibrary.EnsureLoaded();
            nint text = 0;
            TorchException.Check(NativeMethods.mpp_runtime_torch_version(&text));
            return Marshal.PtrToStringUTF8(text) ?? "";
        }
    }

    /// <summary>True when a CUDA device can be used (a CUDA libtorch and at least one visible GPU).</summary>
    public static bool CudaAvailable => CudaDeviceCount > 0;

    public static unsafe int CudaDeviceCount
    {
        get
        {
            BridgeLibrary.EnsureLoaded();
            var count = 0;
            TorchException.Check(NativeMethods.mpp_runtime_cuda_device_count(&count));
            return count;
        }
    }

    /// <summary>True when the loaded libtorch was built with CUDA (Debian's libtorch-dev is not).</summary>
    public static unsafe bool CudaCompiled
    {
        get
        {
            BridgeLibrary.EnsureLoaded();
            var compiled = 0;
            TorchException.Check(NativeMethods.mpp_runtime_cuda_compiled(&compiled));
            return compiled != 0;
        }
    }

    /// <summary>
    /// The intra-op threads a verb runs with, in one order everywhere: <c>--threads</c> when given
    /// (<paramref name="given"/>), else <see cref="BridgeLibrary.ThreadsVariable"/>, else the verb's own default.
    /// </summary>
    public static int ChooseThreads(int? given, int verbDefault) => given ?? BridgeLibrary.EnvironmentThreads() ?? verbDefault;

    /// <summary>libtorch's intra-op thread count (torch::set_num_threads); set explicitly at load, see <see cref="BridgeLibrary.DefaultThreads"/>.</summary>
    public static unsafe int Threads
    {
        get
        {
            BridgeLibrary.EnsureLoaded();
            var threads = 0;
            TorchException.Check(NativeMethods.mpp_runtime_get_threads(&threads));
            return threads;
        }

        set
        {
            BridgeLibrary.EnsureLoaded();
            TorchException.Check(NativeMethods.mpp_runtime_set_threads(value));
        }
    }

    /// <summary>The path of the loaded bridge library.</summary>
    public static string BridgePath
    {
        get
        {
            BridgeLibrary.EnsureLoaded();
            return BridgeLibrary.Path;
        }
    }

    /// <summary>The loaded bridge's ABI version (checked against <see cref="ExpectedBridgeVersion"/> at load).</summary>
    public static int BridgeVersion
    {
        get
        {
            BridgeLibrary.EnsureLoaded();
            return BridgeLibrary.Version;
        }
    }

    public static int ExpectedBridgeVersion => BridgeLibrary.ExpectedVersion;

    /// <summary>Seeds libtorch's global generators (torch::manual_seed: dropout masks; stage initialization has its own seed).</summary>
    public static void ManualSeed(long seed)
    {
        BridgeLibrary.EnsureLoaded();
        TorchException.Check(NativeMethods.mpp_runtime_manual_seed(seed));
    }

    /// <summary>
    /// destination row i = source row indices[i], rows of <paramref name="rowLength"/> floats: a batch gathered from a
    /// data set, copied by libtorch's index_select on its intra-op threads (in parallel when <see cref="Threads"/> > 1,
    /// as a pure libtorch training loop gathers its batches). An index outside the source throws, naming it.
    /// </summary>
    public static unsafe void GatherRows(ReadOnlySpan<float> source, int rowLength, ReadOnlySpan<int> indices, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 1);
        if (source.Length % rowLength != 0 || destination.Length < (long)indices.Length * rowLength)
        {
            throw new ArgumentException(
                $"gather: the source ({source.Length} floats) must be whole rows of {rowLength}, and the destination " +
                $"({destination.Length} floats) must hold {indices.Length} rows");
        }

        BridgeLibrary.EnsureLoaded();
        fixed (float* s = source)
        fixed (int* i = indices)
        fixed (float* d = destination)
        {
            TorchException.Check(NativeMethods.mpp_runtime_gather_rows(s, source.Length / rowLength, rowLength, i, indices.Length, d));
        }
    }

    /// <summary>at::get_parallel_info(): ATen/OpenMP/MKL thread settings, as libtorch prints them.</summary>
    public static unsafe string ParallelInfo()
    {
        BridgeLibrary.EnsureLoaded();
        nint text = 0;
        TorchException.Check(NativeMethods.mpp_runtime_parallel_info(&text));
        return Marshal.PtrToStringUTF8(text) ?? "";
    }

    /// <summary>For <c>mpipipe info</c>: libtorch version and file, bridge path, threads, CUDA, BLAS, malloc tuning.</summary>
    public static unsafe IReadOnlyDictionary<string, string> Describe()
    {
        BridgeLibrary.EnsureLoaded();
        var maps = LoadedLibraries();
        var torchFile = maps.FirstOrDefault(p => Path.GetFileName(p).StartsWith("libtorch_cpu.so", StringComparison.Ordinal));
        long mmapThreshold = 0, trimThreshold = 0;
        TorchException.Check(NativeMethods.mpp_runtime_malloc_tuning(&mmapThreshold, &trimThreshold));
        var devices = CudaDeviceCount;
        return new Dictionary<string, string>
        {
            ["libtorch"] = torchFile is null ? LibtorchVersion : $"{LibtorchVersion} ({torchFile})",
            ["torch bridge"] = $"{BridgeLibrary.Path} (ABI {BridgeLibrary.Version})",
            ["torch threads"] = Threads.ToString(),
            ["CUDA"] = devices > 0 ? $"{devices} device{(devices == 1 ? "" : "s")}"
                : CudaCompiled ? "not available (no GPU visible)" : "not available (libtorch built without CUDA)",
            ["BLAS"] = DescribeBlas(maps),
            ["malloc tuning"] = mmapThreshold > 0
                ? $"mmap threshold {mmapThreshold >> 20} MiB, trim threshold {trimThreshold >> 20} MiB"
                : "left to MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_",
        };
    }

    /// <summary>Which BLAS the dynamic linker gave libtorch (Debian: the libblas.so.3 alternative), judged by its path.</summary>
    internal static string DescribeBlas(IReadOnlyList<string> loadedLibraries)
    {
        var blas = loadedLibraries.FirstOrDefault(p =>
        {
            var name = Path.GetFileName(p);
            return name.StartsWith("libblas.so", StringComparison.Ordinal) || name.StartsWith("libopenblas", StringComparison.Ordinal)
                || name.StartsWith("libmkl_rt", StringComparison.Ordinal) || name.StartsWith("libblis", StringComparison.Ordinal);
        });
        if (blas is null)
        {
            return "none loaded (libtorch's own kernels, or MKL linked in)";
        }

        if (blas.Contains("openblas", StringComparison.OrdinalIgnoreCase))
        {
            return $"OpenBLAS ({blas})";
        }

        if (blas.Contains("mkl", StringComparison.OrdinalIgnoreCase) || blas.Contains("blis", StringComparison.OrdinalIgnoreCase))
        {
            return blas;
        }

        return $"reference BLAS, about 17x slower ({blas}): install libopenblas0-openmp";
    }

    /// <summary>The files mapped into this process (/proc/self/maps), in order of first appearance.</summary>
    private static List<string> LoadedLibraries()
    {
        try
        {
            return File.ReadLines("/proc/self/maps")
                .Select(line => line.IndexOf('/') is var slash and >= 0 ? line[slash..].Trim() : "")
                .Where(path => path.Contains(".so", StringComparison.Ordinal))
                .Distinct()
                .ToList();
        }
        catch (IOException)
        {
            return [];
        }
    }
}
