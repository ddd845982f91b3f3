using System.Runtime.InteropServices;

namespace MpiPipeline.TorchSharp.Tests;

/// <summary>
/// MallocTuning read back from glibc's own chunk headers (not from what Apply says): a block of size n is mmapped
/// (IS_MMAPPED, bit 1 of the size word before it) exactly when n is at or above the mmap threshold.
/// </summary>
public sealed class MallocTuningTests
{
    [Test]
    public void AfterApplyAOneMebibyteBlockComesFromTheHeapAndAHundredMebibyteOneIsMapped()
    {
        Assume.That(OperatingSystem.IsLinux(), "glibc only");
        Assume.That(Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_"), Is.Null, "the environment sets the threshold");
        Assert.That(MallocTuning.Apply(), Does.Contain($"mmap threshold {MallocTuning.MmapThresholdBytes >> 20} MiB"));
        Assert.Multiple(() =>
        {
            // glibc's default threshold is 128 KiB: without the tuning a 1 MiB block is mmapped.
            Assert.That(IsMapped(1 << 20), Is.False, "1 MiB, below 64 MiB");
            Assert.That(IsMapped(100 << 20), Is.True, "100 MiB, above 64 MiB");
        });
    }

    private static unsafe bool IsMapped(nuint bytes)
    {
        var block = NativeMemory.Alloc(bytes);
        try
        {
            const nuint isMmapped = 0x2;
            return (*((nuint*)block - 1) & isMmapped) != 0;
        }
        finally
        {
            NativeMemory.Free(block);
        }
    }
}
