using MpiPipeline.Mpi;

namespace MpiPipeline.Layerwise;

/// <summary>
/// One redistribution between two layouts of an activation, on one rank: forward, the rank's held block feeds the
/// blocks the others need (its own part copied locally, the rest in one MPI_Alltoallv, or for a halo exchange by
/// point-to-point messages to the neighbours); backward, the same pieces of the
/// gradient go back the other way and are added into the held block's gradient (partial sums meet: the Reduce-scatter
/// of a replicated input, the halo rows of a height-split conv). Every rank builds the same transfer from the same
/// blocks, so the counts agree pairwise; when no rank sends anything to another, no MPI call is made at all.
/// </summary>
internal sealed class BlockTransfer
{
    private readonly int rank;
    private readonly int columns;
    private readonly ActivationBlock held;
    private readonly ActivationBlock needed;
    private readonly ActivationBlock[] outgoing;   // held[rank] ∩ needed[q]
    private readonly ActivationBlock[] incoming;   // held[q] ∩ needed[rank]
    private readonly int[] outgoingCounts, outgoingDisplacements, incomingCounts, incomingDisplacements;
    private readonly float[] outgoingBuffer, incomingBuffer;
    private readonly bool silent;
    private readonly bool pointToPoint;

    public BlockTransfer(IReadOnlyList<ActivationBlock> heldBlocks, IReadOnlyList<ActivationBlock> neededBlocks, int rank, int columns)
    {
        this.rank = rank;
        this.columns = columns;
        held = heldBlocks[rank];
        needed = neededBlocks[rank];
        outgoing = [.. neededBlocks.Select(block => held.Intersect(block))];
        incoming = [.. heldBlocks.Select(block => block.Intersect(needed))];
        (outgoingCounts, outgoingDisplacements) = Counts(outgoing, rank, columns);
        (incomingCounts, incomingDisplacements) = Counts(incoming, rank, columns);
        outgoingBuffer = new float[outgoingCounts.Sum()];
        incomingBuffer = new float[incomingCounts.Sum()];
        var kind = TransferCosts.Cost(heldBlocks, neededBlocks, columns).Kind;
        silent = kind == TransferKind.None;
        pointToPoint = kind == TransferKind.Halo;
        if (!needed.IsEmpty && incoming.Sum(piece => piece.Elements(columns)) != needed.Elements(columns))
        {
            throw new InvalidOperationException($"internal: rank {rank} needs {needed}, which the held blocks do not cover exactly");
        }

    }

    /// <summary>Bytes this rank sends forward (and receives backward) per call.</summary>
    public long ForwardBytes => outgoingBuffer.LongLength * TransferCosts.BytesPerElement;

    /// <summary>Bytes this rank sends backward.</summary>
    public long BackwardBytes => incomingBuffer.LongLength * TransferCosts.BytesPerElement;

    /// <summary>From this rank's held block's values to the block it needs.</summary>
    public void Forward(ReadOnlySpan<float> heldValues, Span<float> neededValues, Communicator world)
    {
        ActivationBlock.Copy(heldValues, held, neededValues, needed, outgoing[rank], columns);
        if (silent)
        {
            return;
        }

        for (var q = 0; q < outgoing.Length; q++)
        {
            if (q != rank)
            {
                ActivationBlock.Copy(heldValues, held, outgoingBuffer.AsSpan(outgoingDisplacements[q]), outgoing[q], outgoing[q], columns);
            }
        }

        Exchange(world, outgoingBuffer, outgoingCounts, outgoingDisplacements, incomingBuffer, incomingCounts, incomingDisplacements);
        for (var q = 0; q < incoming.Length; q++)
        {
            if (q != rank)
            {
                ActivationBlock.Copy(incomingBuffer.AsSpan(incomingDisplacements[q]), incoming[q], neededValues, needed, incoming[q], columns);
            }
        }
    }

    /// <summary>Adds the gradient of the needed block into the held block's gradient (which the caller zeroed) of every rank.</summary>
    public void Backward(ReadOnlySpan<float> neededGradient, Span<float> heldGradient, Communicator world)
    {
        ActivationBlock.Copy(neededGradient, needed, heldGradient, held, outgoing[rank], columns, add: true);
        if (silent)
        {
            return;
        }

        for (var q = 0; q < incoming.Length; q++)
        {
            if (q != rank)
            {
                ActivationBlock.Copy(neededGradient, needed, incomingBuffer.AsSpan(incomingDisplacements[q]), incoming[q], incoming[q], columns);
            }
        }

        Exchange(world, incomingBuffer, incomingCounts, incomingDisplacements, outgoingBuffer, outgoingCounts, outgoingDisplacements);
        for (var q = 0; q < outgoing.Length; q++)
        {
            if (q != rank)
            {
                ActivationBlock.Copy(outgoingBuffer.AsSpan(outgoingDisplacements[q]), outgoing[q], heldGradient, held, outgoing[q], columns, add: true);
            }
        }
    }

    /// <summary>
    /// The pieces to and from the other ranks: a halo exchange point-to-point with the (at most two) neighbours, each
    /// piece its own message; any other pattern one MPI_Alltoallv over every rank (zero counts where ranks share nothing).
    /// </summary>
    private void Exchange(Communicator world, float[] send, int[] sendCounts, int[] sendDisplacements, float[] receive, int[] receiveCounts,
        int[] receiveDisplacements)
    {
        if (!pointToPoint)
        {
            world.Alltoallv<float>(send, sendCounts, sendDisplacements, receive, receiveCounts, receiveDisplacements);
            return;
        }

        const int tag = 18;
        var requests = new List<Request>(4);
        for (var q = 0; q < sendCounts.Length; q++)
        {
            if (receiveCounts[q] > 0)
            {
                requests.Add(world.Irecv(receive.AsMemory(receiveDisplacements[q], receiveCounts[q]), q, tag));
            }
        }

        for (var q = 0; q < sendCounts.Length; q++)
        {
            if (sendCounts[q] > 0)
            {
                requests.Add(world.Isend<float>(send.AsMemory(sendDisplacements[q], sendCounts[q]), q, tag));
            }
        }

        Request.WaitAll([.. requests]);
    }

    /// <summary>Element counts and displacements of the pieces for the other ranks (this rank's own piece is copied, not sent).</summary>
    private static (int[] Counts, int[] Displacements) Counts(ActivationBlock[] pieces, int rank, int columns)
    {
        var counts = new int[pieces.Length];
        var displacements = new int[pieces.Length];
        var at = 0;
        for (var q = 0; q < pieces.Length; q++)
        {
            counts[q] = q == rank ? 0 : checked((int)pieces[q].Elements(columns));
            displacements[q] = at;
            at = checked(at + counts[q]);
        }

        return (counts, displacements);
    }
}
