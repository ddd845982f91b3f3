namespace MpiPipeline.Mpi;

/// <summary>What a receive or probe learned about a message: its source, tag and size in bytes.</summary>
public readonly record struct Status(int Source, int Tag, int ByteCount)
{
    /// <summary>The number of elements of type T in the message.</summary>
    public int Count<T>() where T : unmanaged => ByteCount / System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    /// <summary>Reads a native MPI_Status laid out as the loaded ABI lays it out.</summary>
    internal static unsafe Status Read(byte* native)
    {
        var table = MpiLibrary.Table;
        var bytes = 0;
        MpiException.Check(NativeMethods.MPI_Get_count(native, table.Byte, &bytes));
        return new Status(*(int*)(native + table.StatusSourceOffset), *(int*)(native + table.StatusTagOffset), bytes);
    }

    /// <summary>Large enough for MPI_Status of either ABI (20 or 24 bytes), 8-byte aligned.</summary>
    internal const int MaxNativeSize = 32;
}
