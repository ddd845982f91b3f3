using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;

namespace MpiPipeline.TorchSharp;

/// <summary>How a <see cref="DataParallel"/> averages: the exchange's compressor and how a waiting rank waits.</summary>
public sealed record DataParallelOptions
{
    /// <summary>A compressor as <c>--compress</c> spells it (none, fp16, qsgd:S[,d], ecq:S[,d,alpha,beta]); gradients
    /// only, models are always averaged exactly.</summary>
    public string Compress { get; init; } = CompressorRegistry.None;

    /// <summary>A compressor instance instead of <see cref="Compress"/> (one of the exchange's, or a user's own).</summary>
    public IGradientCompressor? Compressor { get; init; }

    /// <summary>Seeds a compressor's stochastic rounding, with the rank and the step.</summary>
    public long Seed { get; init; }

    /// <summary>Null: MPI's blocking Allreduce. Yield or Sleep: a polled one that leaves the core to the ranks still
    /// computing on an oversubscribed node.</summary>
    public IdleWait? Wait { get; init; }

    /// <summary>Raise glibc's mmap and trim thresholds for the process (<see cref="MallocTuning"/>), as the bridge
    /// does: true by default; false leaves malloc as the program set it.</summary>
    public bool TuneMalloc { get; init; } = true;

    /// <summary>Stage through host buffers even where the tensors are host memory: the CUDA path, testable on a CPU.</summary>
    internal bool ForceStaging { get; init; }
}
