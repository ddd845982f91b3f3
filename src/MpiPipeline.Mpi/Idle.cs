namespace MpiPipeline.Mpi;

/// <summary>Sleeps shorter than a millisecond (Thread.Sleep's resolution): nanosleep, plus the kernel's timer slack.</summary>
public static class Idle
{
    public static unsafe void Sleep(long nanoseconds)
    {
        var timespec = stackalloc long[2];
        timespec[0] = nanoseconds / 1_000_000_000;
        timespec[1] = nanoseconds % 1_000_000_000;
        NativeMethods.nanosleep(timespec, null);
    }
}
