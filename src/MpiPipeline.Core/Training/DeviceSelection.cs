using MpiPipeline.Mpi;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>
/// Which device a rank trains on. <c>--device cuda</c> means "one GPU per rank": rank k of its node (node-local rank,
/// from <see cref="Communicator.SplitShared"/>) takes <c>cuda:(k mod visible devices)</c>, so a job with one rank per GPU
/// (<c>srun --ntasks-per-node=G --gpus-per-node=G</c>, or <c>--gpus-per-task=1</c>, where each rank sees one) spreads
/// over the GPUs. <c>--device auto</c> does the same where CUDA is usable and falls back to <c>cpu</c> where it is not
/// (a CPU-only libtorch, no GPU visible). <c>cpu</c> and <c>cuda:N</c> are taken as given.
/// </summary>
internal static class DeviceSelection
{
    /// <summary>The device this rank uses; collective over <paramref name="world"/> when the choice needs the node-local rank.</summary>
    public static string ForRank(Communicator world, string requested)
    {
        if (requested is not ("cuda" or "auto"))
        {
            return requested;
        }

        var node = world.SplitShared(world.Rank);
        var localRank = node.Rank;
        node.Free();
        var count = TorchRuntime.CudaDeviceCount;
        return Resolve(requested, localRank, count, cudaCompiled: count > 0 || TorchRuntime.CudaCompiled);
    }

    /// <summary>
    /// The pure rule: <paramref name="requested"/> for node-local rank <paramref name="localRank"/> with
    /// <paramref name="deviceCount"/> visible GPUs (<paramref name="cudaCompiled"/>: whether libtorch has CUDA at all,
    /// for the message).
    /// </summary>
    public static string Resolve(string requested, int localRank, int deviceCount, bool cudaCompiled = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(localRank);
        ArgumentOutOfRangeException.ThrowIfNegative(deviceCount);
        return requested switch
        {
            "cuda" when deviceCount == 0 => throw new InputException(
                "--device cuda: no CUDA device is visible to this rank (" + (cudaCompiled
                    ? "no GPU visible: check the job's --gpus*/--gres and CUDA_VISIBLE_DEVICES"
                    : "this libtorch is built without CUDA: build the bridge with `make bridge-cuda` and set MPIPIPE_TORCH_BRIDGE")
                + "); use --device auto to fall back to the CPU"),
            "cuda" or "auto" when deviceCount > 0 => $"cuda:{localRank % deviceCount}",
            "auto" => "cpu",
            _ => requested,
        };
    }
}
