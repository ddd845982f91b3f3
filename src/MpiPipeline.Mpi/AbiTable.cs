namespace MpiPipeline.Mpi;

/// <summary>Which of the two MPI C ABIs the loaded library speaks.</summary>
public enum MpiAbi
{
    /// <summary>MPICH, Intel MPI, Cray MPICH, MVAPICH: handles are 4-byte integer constants.</summary>
    Mpich,

    /// <summary>Open MPI 4.x/5.x: handles are addresses of exported globals.</summary>
    OpenMpi,
}

/// <summary>
/// The constants and struct layout of one MPI ABI. Values measured from each MPI's own <c>mpi.h</c> by
/// tests/probe/mpi_probe.c; MpiPipeline.Tests re-checks them against the probe in every CI run.
/// Handles are carried as <see cref="nint"/> for both ABIs (an int argument occupies a full register slot).
/// </summary>
internal sealed record AbiTable
{
    public required MpiAbi Abi { get; init; }
    public required nint CommWorld { get; init; }
    public required nint CommSelf { get; init; }
    public required nint CommNull { get; init; }
    public required nint Float { get; init; }
    public required nint Double { get; init; }
    public required nint Int { get; init; }
    public required nint Int64 { get; init; }
    public required nint Byte { get; init; }

    /// <summary>MPI_UINT8_T: byte buffers in reductions (MPI_BYTE is not defined for SUM/MAX/MIN).</summary>
    public required nint UInt8 { get; init; }
    public required nint OpSum { get; init; }
    public required nint OpMax { get; init; }
    public required nint OpMin { get; init; }
    public required nint RequestNull { get; init; }
    public required nint ErrorsReturn { get; init; }
    public required nint InfoNull { get; init; }

    /// <summary>sizeof(MPI_Comm), sizeof(MPI_Request): the element size of handle arrays (Waitall).</summary>
    public required int HandleSize { get; init; }
    public required int StatusSize { get; init; }
    public required int StatusSourceOffset { get; init; }
    public required int StatusTagOffset { get; init; }
    public required int StatusErrorOffset { get; init; }
    public required nint StatusIgnore { get; init; }
    public required nint InPlace { get; init; }
    public required int AnySource { get; init; }
    public required int ProcNull { get; init; }
    public required int CommTypeShared { get; init; }
    public required int MaxProcessorName { get; init; }
    public required int MaxErrorString { get; init; }
    public required int MaxLibraryVersionString { get; init; }

    public const int AnyTag = -1;
    public const int Undefined = -32766;
    public const int Success = 0;
    public const int ThreadSingle = 0;
    public const int ThreadFunneled = 1;
    public const int ThreadSerialized = 2;
    public const int ThreadMultiple = 3;

    /// <summary>The MPICH ABI (MPICH 3.x/4.x, Intel MPI, MVAPICH, Cray MPICH): fixed integer handles.</summary>
    public static AbiTable Mpich { get; } = new()
    {
        Abi = MpiAbi.Mpich,
        CommWorld = 0x44000000,
        CommSelf = 0x44000001,
        CommNull = 0x04000000,
        Float = 0x4c00040a,
        Double = 0x4c00080b,
        Int = 0x4c000405,
        Int64 = 0x4c00083a,
        Byte = 0x4c00010d,
        UInt8 = 0x4c00013b,
        OpSum = 0x58000003,
        OpMax = 0x58000001,
        OpMin = 0x58000002,
        RequestNull = 0x2c000000,
        ErrorsReturn = 0x54000001,
        InfoNull = 0x1c000000,
        HandleSize = 4,
        StatusSize = 20,
        StatusSourceOffset = 8,
        StatusTagOffset = 12,
        StatusErrorOffset = 16,
        StatusIgnore = 1,
        InPlace = -1,
        AnySource = -2,
        ProcNull = -1,
        CommTypeShared = 1,
        MaxProcessorName = 128,
        MaxErrorString = 512,
        MaxLibraryVersionString = 8192,
    };

    /// <summary>Names of the Open MPI globals whose addresses are the handles, by table field.</summary>
    public static IReadOnlyDictionary<string, string> OpenMpiSymbols { get; } = new Dictionary<string, string>
    {
        ["COMM_WORLD"] = "ompi_mpi_comm_world",
        ["COMM_SELF"] = "ompi_mpi_comm_self",
        ["COMM_NULL"] = "ompi_mpi_comm_null",
        ["FLOAT"] = "ompi_mpi_float",
        ["DOUBLE"] = "ompi_mpi_double",
        ["INT"] = "ompi_mpi_int",
        ["INT64_T"] = "ompi_mpi_int64_t",
        ["BYTE"] = "ompi_mpi_byte",
        ["UINT8_T"] = "ompi_mpi_uint8_t",
        ["SUM"] = "ompi_mpi_op_sum",
        ["MAX"] = "ompi_mpi_op_max",
        ["MIN"] = "ompi_mpi_op_min",
        ["REQUEST_NULL"] = "ompi_request_null",
        ["ERRORS_RETURN"] = "ompi_mpi_errors_return",
        ["INFO_NULL"] = "ompi_mpi_info_null",
    };

    /// <summary>The Open MPI ABI: each handle is the address of an exported global, resolved from the loaded library.</summary>
    public static AbiTable OpenMpi(Func<string, nint> export)
    {
        nint H(string key) => export(OpenMpiSymbols[key]);
        return new AbiTable
        {
            Abi = MpiAbi.OpenMpi,
            CommWorld = H("COMM_WORLD"),
            CommSelf = H("COMM_SELF"),
            CommNull = H("COMM_NULL"),
            Float = H("FLOAT"),
            Double = H("DOUBLE"),
            Int = H("INT"),
            Int64 = H("INT64_T"),
            Byte = H("BYTE"),
            UInt8 = H("UINT8_T"),
            OpSum = H("SUM"),
            OpMax = H("MAX"),
            OpMin = H("MIN"),
            RequestNull = H("REQUEST_NULL"),
            ErrorsReturn = H("ERRORS_RETURN"),
            InfoNull = H("INFO_NULL"),
            HandleSize = 8,
            StatusSize = 24,
            StatusSourceOffset = 0,
            StatusTagOffset = 4,
            StatusErrorOffset = 8,
            StatusIgnore = 0,
            InPlace = 1,
            AnySource = -1,
            ProcNull = -2,
            CommTypeShared = 0,
            MaxProcessorName = 256,
            MaxErrorString = 256,
            MaxLibraryVersionString = 256,
        };
    }

    /// <summary>
    /// The table as the probe prints it ("KEY VALUE"): hex handles for MPICH, global names for Open MPI.
    /// Used by the test that compares the binding with each installed mpi.h.
    /// </summary>
    public IReadOnlyDictionary<string, string> AsProbeLines()
    {
        var lines = new Dictionary<string, string> { ["ABI"] = Abi == MpiAbi.Mpich ? "mpich" : "openmpi" };
        (string Key, nint Value)[] handles =
        [
            ("COMM_WORLD", CommWorld), ("COMM_SELF", CommSelf), ("COMM_NULL", CommNull), ("FLOAT", Float),
            ("DOUBLE", Double), ("INT", Int), ("INT64_T", Int64), ("BYTE", Byte), ("UINT8_T", UInt8), ("SUM", OpSum), ("MAX", OpMax),
            ("MIN", OpMin), ("REQUEST_NULL", RequestNull), ("ERRORS_RETURN", ErrorsReturn), ("INFO_NULL", InfoNull),
        ];
        foreach (var (key, value) in handles)
        {
            lines[key] = Abi == MpiAbi.Mpich ? $"0x{(uint)value:x8}" : OpenMpiSymbols[key];
        }

        lines["STATUS_SIZE"] = StatusSize.ToString();
        lines["STATUS_SOURCE"] = StatusSourceOffset.ToString();
        lines["STATUS_TAG"] = StatusTagOffset.ToString();
        lines["STATUS_ERROR"] = StatusErrorOffset.ToString();
        lines["HANDLE_SIZE"] = HandleSize.ToString();
        lines["REQUEST_SIZE"] = HandleSize.ToString();
        lines["STATUS_IGNORE"] = StatusIgnore.ToString();
        lines["STATUSES_IGNORE"] = StatusIgnore.ToString();
        lines["IN_PLACE"] = InPlace.ToString();
        lines["ANY_SOURCE"] = AnySource.ToString();
        lines["ANY_TAG"] = AnyTag.ToString();
        lines["PROC_NULL"] = ProcNull.ToString();
        lines["UNDEFINED"] = Undefined.ToString();
        lines["SUCCESS"] = Success.ToString();
        lines["THREAD_SINGLE"] = ThreadSingle.ToString();
        lines["THREAD_FUNNELED"] = ThreadFunneled.ToString();
        lines["THREAD_SERIALIZED"] = ThreadSerialized.ToString();
        lines["THREAD_MULTIPLE"] = ThreadMultiple.ToString();
        lines["COMM_TYPE_SHARED"] = CommTypeShared.ToString();
        lines["MAX_PROCESSOR_NAME"] = MaxProcessorName.ToString();
        lines["MAX_ERROR_STRING"] = MaxErrorString.ToString();
        lines["MAX_LIBRARY_VERSION_STRING"] = MaxLibraryVersionString.ToString();
        lines["SIZEOF_AINT"] = "8";
        lines["SIZEOF_COUNT"] = "8";
        return lines;
    }
}
