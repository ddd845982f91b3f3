using System.Text;

namespace MpiPipeline.Mpi;

/// <summary>
/// Process-wide MPI state: initialization (MPI_THREAD_MULTIPLE asked for; see ThreadLevel), the predefined communicators, library facts,
/// and finalization only if this process initialized MPI.
/// </summary>
public static unsafe class MpiEnvironment
{
    private static bool weInitialized;

    public static bool IsInitialized
    {
        get
        {
            if (!MpiLibrary.IsLoaded)
            {
                return false;
            }

            var flag = 0;
            MpiException.Check(NativeMethods.MPI_Initialized(&flag));
            return flag != 0;
        }
    }

    public static bool IsFinalized
    {
        get
        {
            if (!MpiLibrary.IsLoaded)
            {
                return false;
            }

            var flag = 0;
            MpiException.Check(NativeMethods.MPI_Finalized(&flag));
            return flag != 0;
        }
    }

    public static Communicator World { get; private set; } = null!;
    public static Communicator Self { get; private set; } = null!;

    /// <summary>True when MPI calls may come from any thread at once (MPI_THREAD_MULTIPLE provided).</summary>
    public static bool ThreadMultiple => ThreadLevel >= AbiTable.ThreadMultiple;

    /// <summary>The thread level MPI provided (0 single .. 3 multiple). MULTIPLE is asked for: the overlapped gradient
    /// exchange tests its requests from a progress thread while backward runs on the main thread; every other MPI call
    /// stays on the main thread, so FUNNELED or SERIALIZED is enough for the rest (the exchange then falls back to
    /// progress from backward's callbacks).</summary>
    public static int ThreadLevel { get; private set; }
    public static MpiAbi Abi => MpiLibrary.Table.Abi;

    /// <summary>
    /// Whether the library takes CUDA device memory in its calls, as <c>MPIX_Query_cuda_support()</c> says at run time
    /// (Open MPI and MPICH export it; false where the library does not, or before MPI is initialized).
    /// </summary>
    public static bool CudaAware
    {
        get
        {
            if (!IsInitialized || !System.Runtime.InteropServices.NativeLibrary.TryGetExport(MpiLibrary.Handle, "MPIX_Query_cuda_support", out var query))
            {
                return false;
            }

            return ((delegate* unmanaged<int>)query)() != 0;
        }
    }
    public static string LibraryPath => MpiLibrary.Path;

    /// <summary>Loads the library, initializes MPI if nobody has, sets MPI_ERRORS_RETURN, checks the world size.</summary>
    public static void Initialize()
    {
        // UCX (Debian's MPICH is ch4:ucx) installs SEGV/BUS/FPE handlers in MPI_Init that turn .NET's own
        // NullReferenceException handling into a fatal abort. libucs reads its configuration in a library constructor,
        // so this must reach the native environment before the MPI library is loaded. Kept unless the user set it.
        if (Environment.GetEnvironmentVariable("UCX_ERROR_SIGNALS") is null)
        {
            NativeMethods.setenv("UCX_ERROR_SIGNALS", "", 1);
        }

        MpiLibrary.Load();

        if (!IsInitialized)
        {
            var provided = 0;
            MpiException.Check(NativeMethods.MPI_Init_thread(null, null, AbiTable.ThreadMultiple, &provided));
            weInitialized = true;
        }

        var level = 0;
        MpiException.Check(NativeMethods.MPI_Query_thread(&level));
        ThreadLevel = level;
        World = new Communicator(MpiLibrary.Table.CommWorld, predefined: true);
        Self = new Communicator(MpiLibrary.Table.CommSelf, predefined: true);
        CheckWorldSize(World.Size, MpiLibrary.CurrentEnvironment());
    }

    /// <summary>
    /// A launcher of one MPI family running a program linked to the other gives N one-rank jobs that all think
    /// they are rank 0. Compare the world size with what the launcher announced and fail loudly instead.
    /// </summary>
    internal static void CheckWorldSize(int worldSize, IReadOnlyDictionary<string, string?> env)
    {
        if (ExpectedWorldSize(env) is not (var variable, var expected) || expected == worldSize)
        {
            return;
        }

        throw new InputException(
            $"MPI world size is {worldSize} but the launcher started {expected} processes ({variable}={expected}). " +
            $"The launcher and the MPI library ({MpiLibrary.Path}, {Abi} ABI) belong to different MPI installations: " +
            $"use the matching launcher (mpiexec.mpich for MPICH, mpirun.openmpi for Open MPI) or set {MpiLibrary.OverrideVariable}.");
    }

    internal static (string Variable, int Size)? ExpectedWorldSize(IReadOnlyDictionary<string, string?> env)
    {
        string[] variables = env.ContainsKey("SLURM_PROCID") && !env.ContainsKey("PMI_SIZE") && !env.ContainsKey("OMPI_COMM_WORLD_SIZE")
            ? ["SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"]
            : ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"];
        foreach (var variable in variables)
        {
            if (env.TryGetValue(variable, out var text) && int.TryParse(text, out var size) && size > 0)
            {
                return (variable, size);
            }
        }

        return null;
    }

    /// <summary>The rank the launcher gave this process, readable before MPI_Init (for messages about bad arguments).</summary>
    public static int LauncherRank()
    {
        foreach (var variable in new[] { "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID" })
        {
            if (int.TryParse(Environment.GetEnvironmentVariable(variable), out var rank))
            {
                return rank;
            }
        }

        return 0;
    }

    /// <summary>Finalizes MPI, only if this process initialized it and nobody finalized it yet.</summary>
    public static void FinalizeIfOwned()
    {
        if (weInitialized && !IsFinalized)
        {
            MpiException.Check(NativeMethods.MPI_Finalize());
        }
    }

    /// <summary>Terminates every process of the job with the given exit code.</summary>
    public static void Abort(int exitCode)
    {
        NativeMethods.MPI_Abort(MpiLibrary.Table.CommWorld, exitCode);
    }

    public static double Wtime() => NativeMethods.MPI_Wtime();

    public static string ProcessorName()
    {
        var buffer = stackalloc byte[Math.Max(MpiLibrary.Table.MaxProcessorName, 256) + 1];
        var length = 0;
        MpiException.Check(NativeMethods.MPI_Get_processor_name(buffer, &length));
        return Encoding.UTF8.GetString(buffer, length);
    }

    public static string LibraryVersion()
    {
        var size = Math.Max(MpiLibrary.Table.MaxLibraryVersionString, 8192) + 1;
        var buffer = new byte[size];
        var length = 0;
        fixed (byte* p = buffer)
        {
            MpiException.Check(NativeMethods.MPI_Get_library_version(p, &length));
        }

        return Encoding.UTF8.GetString(buffer, 0, length).TrimEnd('\0', '\n', ' ');
    }

    /// <summary>The MPI standard version the library implements, e.g. (3, 1).</summary>
    public static (int Major, int Minor) StandardVersion()
    {
        int major = 0, minor = 0;
        MpiException.Check(NativeMethods.MPI_Get_version(&major, &minor));
        return (major, minor);
    }
}
