using System.Globalization;
using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>
/// Device-resident gradients (<see cref="StagedAllreduceExchange"/>): where a stage's flat buffers are not host memory
/// (CUDA), the data-parallel gradient Allreduce copies them bucket by bucket through the pinned host mirror, or hands
/// the device memory to a CUDA-aware MPI (<c>--cuda-aware-mpi</c>, or <c>MPIX_Query_cuda_support()</c> at run time).
/// <c>MPIPIPE_FORCE_STAGING=1</c> gives a CPU stage separate host mirrors, so that the same path runs without a GPU.
/// </summary>
internal static class GradientStaging
{
    public const string ForceVariable = "MPIPIPE_FORCE_STAGING";

    /// <summary>Whether a CPU stage gets separate host mirrors: <c>1</c> yes; <c>0</c> or unset no.</summary>
    public static bool Forced(string? setting) => setting switch
    {
        null or "" or "0" => false,
        "1" => true,
        _ => throw new InputException($"{ForceVariable} must be 1 (stage the gradients through host mirrors on CPU too) or 0 (got '{setting}')"),
    };

    /// <summary>The stage's gradients go through a staged exchange: separate host mirrors, a dense fp32 Allreduce
    /// (compressed and overlapped exchanges read host memory themselves), more than one rank.</summary>
    public static bool Applies(TrainOptions options, Stage stage, Communicator group) =>
        stage.SeparateHostMirrors && group.Size > 1 && options.Exchange == AllreduceExchange.ExchangeName
        && CompressorRegistry.IsNone(options.Compress);

    /// <summary>The exchange over the stage: its bucket plan (one bucket with --no-overlap), CUDA-aware if told or if MPI says so.</summary>
    public static StagedAllreduceExchange Create(TrainOptions options, Stage stage, Communicator group, IdleWait? wait)
    {
        var lengths = stage.Layout.Select(p => p.Length).ToArray();
        var buckets = options.NoOverlap
            ? [new GradientBucket(0, lengths.Sum(), 0, lengths.Length)]
            : BucketPlan.Create(lengths, BucketPlan.CapacityBytes(options.EffectiveBucketMegabytes, TrainFlags.BucketMegabytes));
        return new StagedAllreduceExchange(group, wait, new DeviceGradients(stage), buckets, options.CudaAwareMpi || MpiEnvironment.CudaAware);
    }

    /// <summary>The results' options: how gradients crossed to MPI, and the copies made (this rank).</summary>
    public static void Describe(IDictionary<string, string> described, StagedAllreduceExchange? exchange)
    {
        described["gradientStaging"] = exchange is null ? "none" : exchange.CudaAware ? "cuda-aware" : "host";
        described["stagingBuckets"] = exchange?.Buckets.Count.ToString(CultureInfo.InvariantCulture) ?? "";
        described["deviceToHostCopies"] = exchange?.Counters.DeviceToHostCopies.ToString(CultureInfo.InvariantCulture) ?? "";
        described["hostToDeviceCopies"] = exchange?.Counters.HostToDeviceCopies.ToString(CultureInfo.InvariantCulture) ?? "";
    }

    /// <summary>One line for the report.</summary>
    public static IReadOnlyList<string> Notes(StagedAllreduceExchange? exchange)
    {
        if (exchange is null || exchange.Counters.Rounds == 0)
        {
            return [];
        }

        var c = exchange.Counters;
        return [exchange.CudaAware
            ? "gradients stay on the device: device memory handed to a CUDA-aware MPI, 1/n on the device"
            : string.Create(CultureInfo.InvariantCulture,
                $"gradients staged through the host mirror in {exchange.Buckets.Count} bucket(s): {c.DeviceToHostCopies} device->host and {c.HostToDeviceCopies} host->device copies over {c.Rounds} rounds (this rank)")];
    }

    private sealed class DeviceGradients(Stage stage) : IDeviceGradients
    {
        public long CopyToHost(int offset, int length) => stage.CopyGradients(toDevice: false, offset, length);

        public long CopyToDevice(int offset, int length) => stage.CopyGradients(toDevice: true, offset, length);

        public void WaitCopy(long ticket) => stage.WaitCopy(ticket);

        public void Synchronize() => stage.Synchronize();

        public Span<float> DeviceMemory => stage.DeviceGradients;

        public void Scale(float factor) => stage.ScaleGradients(factor);
    }
}
