using System.Runtime.InteropServices;

namespace MpiPipeline.Benchmarks;

/// <summary>
/// Page-aligned native memory, touched when allocated: the same kind of buffer the C baseline gets from
/// posix_memalign, so alignment and first-touch page faults are no difference between the two.
/// </summary>
internal sealed unsafe class NativeBuffer : IDisposable
{
    public const int Alignment = 4096;

    private void* pointer;

    public NativeBuffer(long bytes, byte fill)
    {
        if (bytes is <= 0 or > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "a buffer holds 1 byte to 2 GiB");
        }

        Length = (int)bytes;
        pointer = NativeMemory.AlignedAlloc((nuint)bytes, Alignment);
        new Span<byte>(pointer, Length).Fill(fill);
    }

    public int Length { get; }

    public Span<T> As<T>(long bytes) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(pointer is null, this);
        if (bytes < 0 || bytes > Length || bytes % sizeof(T) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"not a whole number of {typeof(T).Name} within {Length} bytes");
        }

        return new Span<T>(pointer, (int)(bytes / sizeof(T)));
    }

    public void Dispose()
    {
        if (pointer is not null)
        {
            NativeMemory.AlignedFree(pointer);
            pointer = null;
        }
    }
}
