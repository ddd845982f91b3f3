namespace MpiPipeline.Mpi;

/// <summary>Element types the binding sends: float, double, int, long (MPI_INT64_T) and byte (MPI_UINT8_T).</summary>
internal static class Datatype
{
    public static nint Of<T>() where T : unmanaged
    {
        var table = MpiLibrary.Table;
        if (typeof(T) == typeof(float)) return table.Float;
        if (typeof(T) == typeof(double)) return table.Double;
        if (typeof(T) == typeof(int)) return table.Int;
        if (typeof(T) == typeof(long)) return table.Int64;
        if (typeof(T) == typeof(byte)) return table.UInt8;
        throw new NotSupportedException($"MPI element type {typeof(T).Name} is not supported: use float, double, int, long or byte.");
    }


    public static int CheckedCount(long length, string what) =>
        length is >= 0 and <= int.MaxValue
            ? (int)length
            : throw new ArgumentOutOfRangeException(what, length, "MPI counts are limited to int.MaxValue elements per call.");
}

/// <summary>Reduction operators.</summary>
public enum ReduceOp
{
    Sum,
    Max,
    Min,
}

internal static class ReduceOpExtensions
{
    public static nint Handle(this ReduceOp op) => op switch
    {
        ReduceOp.Sum => MpiLibrary.Table.OpSum,
        ReduceOp.Max => MpiLibrary.Table.OpMax,
        ReduceOp.Min => MpiLibrary.Table.OpMin,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };
}
