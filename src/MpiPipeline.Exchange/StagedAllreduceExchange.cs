using System.Diagnostics;
using MpiPipeline.Mpi;

namespace MpiPipeline.Exchange;

/// <summary>
/// The device side of a flat gradient buffer that lives on an accelerator while MPI reads host memory: copies of
/// element ranges between it and its host mirror, started asynchronously and waited for by ticket (a stage's copy
/// stream runs them in order), and the device memory itself for a CUDA-aware MPI.
/// </summary>
public interface IDeviceGradients
{
    /// <summary>Starts copying [offset, offset + length) device -> host mirror, after the device work queued so far.</summary>
    long CopyToHost(int offset, int length);

    /// <summary>Starts copying [offset, offset + length) host mirror -> device.</summary>
    long CopyToDevice(int offset, int length);

    /// <summary>Blocks until copy <paramref name="ticket"/> and every one started before it are done.</summary>
    void WaitCopy(long ticket);

    /// <summary>Later device work waits for the copies started so far; the caller waits for the device's queued work.</summary>
    void Synchronize();

    /// <summary>The flat buffer's own (device) memory: only MPI may touch it, never managed code.</summary>
    Span<float> DeviceMemory { get; }

    /// <summary>The flat buffer *= factor, on the device.</summary>
    void Scale(float factor);
}

/// <summary>
/// <c>--exchange allreduce</c> for gradients that stay on the device (a CUDA stage): bucket by bucket
/// (<see cref="BucketPlan"/>), one device -> host copy into the pinned host mirror, the bucket's Allreduce and 1/n
/// there, one host -> device copy back; bucket b + 1's copy to the host runs while bucket b is reduced, and bucket b's
/// copy back while bucket b + 1 is. One bucket (the whole buffer) with <c>--no-overlap</c>. With a CUDA-aware MPI the
/// device memory goes to MPI directly: one whole-buffer Allreduce, the 1/n on the device, no copy. The host mirror
/// holds the averaged gradients after a staged round (not after a CUDA-aware one). Models are averaged on the host
/// mirrors, as <see cref="AllreduceExchange"/> does.
/// </summary>
public sealed class StagedAllreduceExchange : IGradientExchange
{
    private readonly AllreduceExchange whole;
    private readonly IDeviceGradients device;
    private readonly long[] tickets;

    public StagedAllreduceExchange(Communicator group, IdleWait? wait, IDeviceGradients device, IReadOnlyList<GradientBucket> buckets, bool cudaAware)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(buckets);
        whole = new AllreduceExchange(group, wait);
        this.device = device;
        Buckets = buckets;
        CudaAware = cudaAware;
        tickets = new long[buckets.Count];
        Length = buckets.Sum(b => b.Length);
    }

    public string Name => AllreduceExchange.ExchangeName;

    public Communicator Group
    {
        get => whole.Group;
        set => whole.Group = value;
    }

    public ExchangeCounters Counters => whole.Counters;

    public IReadOnlyList<GradientBucket> Buckets { get; }

    /// <summary>True: device memory goes to MPI itself (no staging).</summary>
    public bool CudaAware { get; }

    /// <summary>The flat buffer's length the buckets cover.</summary>
    public int Length { get; }

    /// <summary>g &lt;- (1/n) sum g on the device; <paramref name="hostMirror"/> is the host mirror the buckets are staged through.</summary>
    public void AverageGradients(Span<float> hostMirror)
    {
        if (hostMirror.Length != Length)
        {
            throw new ArgumentException($"the host mirror has {hostMirror.Length} elements but the buckets cover {Length}", nameof(hostMirror));
        }

        var clock = Stopwatch.StartNew();
        if (CudaAware)
        {
            device.Synchronize();           // backward's gradients are in device memory before MPI reads it
            whole.Sum(device.DeviceMemory);
            device.Scale(1f / Group.Size);
        }
        else
        {
            Staged(hostMirror);
        }

        Counters.AddRound((long)Length * sizeof(float), Group.Size, clock.Elapsed.TotalSeconds);
    }

    public void AverageModels(Span<float> parameters) => whole.AverageModels(parameters);

    public void AverageUncounted(Span<float> buffer) => whole.AverageUncounted(buffer);

    private void Staged(Span<float> host)
    {
        var count = Buckets.Count;
        if (count > 0)
        {
            tickets[0] = device.CopyToHost(Buckets[0].Offset, Buckets[0].Length);
        }

        for (var b = 0; b < count; b++)
        {
            if (b + 1 < count)
            {
                tickets[b + 1] = device.CopyToHost(Buckets[b + 1].Offset, Buckets[b + 1].Length);
            }

            device.WaitCopy(tickets[b]);
            var bucket = host.Slice(Buckets[b].Offset, Buckets[b].Length);
            whole.Sum(bucket);
            AllreduceExchange.Scale(bucket, 1f / Group.Size);
            device.CopyToDevice(Buckets[b].Offset, Buckets[b].Length);
        }

        // The optimizer (device work) reads what the copies back wrote; the host mirror is rewritten next step.
        device.Synchronize();
        Counters.DeviceToHostCopies += count;
        Counters.HostToDeviceCopies += count;
    }
}
