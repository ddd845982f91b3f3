using System.Diagnostics;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;

namespace MpiPipeline.Exchange;

/// <summary>
/// Gradients averaged through a compressor (<c>--compress</c>): quantized codes cannot be summed by MPI_SUM, so every
/// rank encodes its gradient, the payload sizes go round with an Allgather, the payloads with one Allgatherv, and every
/// rank decodes all of them in rank order into a zeroed sum and scales it by 1/n: the same operations in the same order
/// everywhere, so every rank ends with bitwise the same average. Per rank that receives (n - 1) payloads, so the
/// traffic grows with n where a ring Allreduce's stays flat; it pays while a payload is much smaller than the dense
/// gradient / n. Whole buffer, after backward (no overlapped buckets yet). Models (and evaluation's average) stay
/// exact: a dense fp32 Allreduce.
/// </summary>
public sealed class CompressedExchange : IGradientExchange, ICompressingExchange
{
    public const string ExchangeName = "compressed";

    private readonly AllreduceExchange dense;
    private int[] sizes = [];
    private int[] displacements = [];
    private byte[] received = [];

    public CompressedExchange(Communicator group, IdleWait? wait, IGradientCompressor compressor)
    {
        dense = new AllreduceExchange(group, wait);
        Compressor = compressor;
    }

    public string Name => ExchangeName;

    public IGradientCompressor Compressor { get; }

    /// <summary>
    /// The round the next <see cref="AverageGradients"/> is: every rank averages once per training step, in order, so
    /// the rounds are the steps, and the compressor's rounding draws are a function of (seed, rank, round). A resumed
    /// run sets it to the steps already done, so that it draws what the uninterrupted run would have.
    /// </summary>
    public long Round { get; set; }

    /// <summary>How the gathers wait: null, MPI's own blocking calls; otherwise MPI_Iallgather(v) polled with this
    /// (an oversubscribed node), so that a rank waiting for a large payload does not busy-poll the core its sender needs.</summary>
    public IdleWait? Wait => dense.Wait;

    public Communicator Group
    {
        get => dense.Group;
        set => dense.Group = value;
    }

    /// <summary>Counts the compressed gradient rounds and the dense model rounds alike (what went to MPI).</summary>
    public ExchangeCounters Counters => dense.Counters;

    public void AverageGradients(Span<float> gradients)
    {
        var clock = Stopwatch.StartNew();
        var n = Group.Size;
        var payload = Compressor.Encode(gradients, Round++);
        Buffers.Fit(ref sizes, n);
        Buffers.Fit(ref displacements, n);
        if (Wait is { } idle)
        {
            Group.Allgather([payload.Length], sizes, idle);
        }
        else
        {
            Group.Allgather([payload.Length], sizes);
        }

        var total = 0L;
        for (var p = 0; p < n; p++)
        {
            displacements[p] = checked((int)total);
            total += sizes[p];
        }

        if (received.Length < total)
        {
            received = new byte[checked((int)total)];
        }

        if (Wait is { } wait)
        {
            Group.Allgatherv(payload, received, sizes, displacements, wait);
        }
        else
        {
            Group.Allgatherv(payload, received, sizes, displacements);
        }

        gradients.Clear();
        for (var p = 0; p < n; p++)
        {
            Compressor.DecodeAdd(received.AsSpan(displacements[p], sizes[p]), gradients);
        }

        AllreduceExchange.Scale(gradients, 1f / n);
        Counters.AddCompressedRound(payload.Length + sizeof(int), gradients.Length, n, clock.Elapsed.TotalSeconds);
    }

    public void AverageModels(Span<float> parameters) => dense.AverageModels(parameters);

    public void AverageUncounted(Span<float> buffer) => dense.AverageUncounted(buffer);
}
