using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;

namespace MpiPipeline.Exchange;

/// <summary>
/// The wire of <see cref="OverlappedAllreduceExchange"/> under a compressor: each bucket is encoded on its own, its
/// payload's size goes round with an MPI_Iallgather and, once every size is in, the payloads with an MPI_Iallgatherv;
/// after all buckets have arrived every rank decodes them in bucket and rank order into a zeroed sum and scales by 1/n,
/// the same operations in the same order everywhere (every rank ends with bitwise the same average). The collectives
/// are issued in one fixed sequence on every rank, size 0, payload 0, size 1, payload 1, ...: MPI matches nonblocking
/// collectives on a communicator by the order they were started in, and a payload's Iallgatherv can only start once
/// its sizes are in, which happens at different times on different ranks; so bucket b + 1's size waits (a few
/// microseconds: its ranks have all reached bucket b) until bucket b's payload is on its way.
/// Not thread-safe: the overlapped exchange calls it under its lock, or from one thread.
/// </summary>
internal sealed class CompressedBuckets
{
    private readonly IGradientCompressor compressor;
    private readonly IReadOnlyList<GradientBucket> buckets;
    private readonly int length;
    private readonly byte[][] payloads;
    private readonly int[] payloadLengths;
    private readonly int[][] sent;
    private readonly Request?[] sizeRequests;
    private readonly Request?[] payloadRequests;
    private int[][] sizes = [];
    private int[][] displacements = [];
    private readonly byte[][] received;
    private int ready;
    private int issued;

    public CompressedBuckets(IGradientCompressor compressor, IReadOnlyList<GradientBucket> buckets, int length)
    {
        this.compressor = compressor;
        this.buckets = buckets;
        this.length = length;
        var count = buckets.Count;
        payloads = new byte[count][];
        payloadLengths = new int[count];
        sent = new int[count][];
        received = new byte[count][];
        for (var b = 0; b < count; b++)
        {
            payloads[b] = [];
            sent[b] = new int[1];
            received[b] = [];
        }

        sizeRequests = new Request?[count];
        payloadRequests = new Request?[count];
    }

    public IGradientCompressor Compressor => compressor;

    /// <summary>The round the buckets being encoded belong to (see <see cref="CompressedExchange.Round"/>).</summary>
    public long Round { get; set; }

    /// <summary>Encodes bucket <paramref name="b"/> of this round into its own buffer (the compressor's is reused by the next bucket).</summary>
    public void Encode(int b, ReadOnlySpan<float> gradients)
    {
        var bucket = buckets[b];
        var payload = compressor.Encode(gradients.Slice(bucket.Offset, bucket.Length), bucket.Offset, length, Round);
        if (payloads[b].Length < payload.Length)
        {
            payloads[b] = new byte[Math.Max(payload.Length, payloads[b].Length * 2)];
        }

        payload.CopyTo(payloads[b]);
        payloadLengths[b] = payload.Length;
        sent[b][0] = payload.Length;
    }

    /// <summary>Bucket <paramref name="b"/> (encoded, and every bucket before it started) goes on the wire.</summary>
    public void Start(int b, Communicator group)
    {
        if (b != ready)
        {
            throw new InvalidOperationException($"compressed bucket {b} started out of order (next is {ready})");
        }

        if (b == 0)
        {
            Fit(group.Size);
        }

        ready = b + 1;
        Issue(group);
    }

    /// <summary>Moves the sequence on as far as the sizes that arrived allow (MPI_Test); never blocks.</summary>
    public void Progress(Communicator group) => Issue(group);

    /// <summary>True when bucket <paramref name="b"/>'s payloads have all arrived (MPI_Test).</summary>
    public bool Arrived(int b) => payloadRequests[b] is { } request && request.Test(out _);

    /// <summary>Waits for every bucket's sizes and payloads, started beforehand, polled with <paramref name="idle"/> under
    /// the stall watchdog; <paramref name="arrived"/> is told each bucket in order as its payloads are in.</summary>
    public void WaitAll(Communicator group, IdleWait idle, Action<int> arrived)
    {
        var count = buckets.Count;
        while (issued < 2 * ready)
        {
            var b = issued / 2;
            sizeRequests[b]!.WaitPolling(idle, $"MPI_Iallgather (payload sizes of gradient bucket {b} of {count})");
            Issue(group);
        }

        for (var b = 0; b < count; b++)
        {
            payloadRequests[b]!.WaitPolling(idle, $"MPI_Iallgatherv (payloads of gradient bucket {b} of {count})");
            arrived(b);
        }
    }

    /// <summary>g = (1/n) sum_p decode(payload_p), bucket by bucket, ranks in order; returns the bytes this rank handed
    /// to MPI this round (each payload and its size word) and ends the round.</summary>
    public long Finish(Span<float> gradients, int ranks)
    {
        long bytes = 0;
        for (var b = 0; b < buckets.Count; b++)
        {
            var sum = gradients.Slice(buckets[b].Offset, buckets[b].Length);
            sum.Clear();
            for (var p = 0; p < ranks; p++)
            {
                compressor.DecodeAdd(received[b].AsSpan(displacements[b][p], sizes[b][p]), sum);
            }

            bytes += payloadLengths[b] + sizeof(int);
        }

        AllreduceExchange.Scale(gradients, 1f / ranks);
        Round++;
        Reset();
        return bytes;
    }

    public void Reset()
    {
        ready = issued = 0;
        Array.Clear(sizeRequests);
        Array.Clear(payloadRequests);
    }

    /// <summary>Issues the next collectives of the sequence while their inputs are there: a size once its bucket is
    /// started, a payload once its sizes have all arrived.</summary>
    private void Issue(Communicator group)
    {
        while (issued < 2 * ready)
        {
            var b = issued / 2;
            if (issued % 2 == 0)
            {
                sizeRequests[b] = group.Iallgather<int>(sent[b], sizes[b]);
            }
            else
            {
                if (!sizeRequests[b]!.Test(out _))
                {
                    return;
                }

                var total = 0L;
                for (var p = 0; p < group.Size; p++)
                {
                    displacements[b][p] = checked((int)total);
                    total += sizes[b][p];
                }

                if (received[b].Length < total)
                {
                    received[b] = new byte[checked((int)Math.Max(total, received[b].Length * 2L))];
                }

                payloadRequests[b] = group.Iallgatherv<byte>(payloads[b].AsMemory(0, payloadLengths[b]), received[b], sizes[b], displacements[b]);
            }

            issued++;
        }
    }

    /// <summary>The per-rank arrays for a group of <paramref name="ranks"/> (the survivors' group may be smaller).</summary>
    private void Fit(int ranks)
    {
        if (sizes.Length == buckets.Count && (buckets.Count == 0 || sizes[0].Length == ranks))
        {
            return;
        }

        sizes = new int[buckets.Count][];
        displacements = new int[buckets.Count][];
        for (var b = 0; b < buckets.Count; b++)
        {
            sizes[b] = new int[ranks];
            displacements[b] = new int[ranks];
        }
    }
}
