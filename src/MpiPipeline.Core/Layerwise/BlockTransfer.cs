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
    private readonly Pieces outgoing;   // held[rank] ∩ needed[q]: sent forward, received backward
    private readonly Pieces incoming;   // held[q] ∩ needed[rank]: received forward, sent backward
    private readonly bool silent;
    private readonly bool pointToPoint;

    public BlockTransfer(IReadOnlyList<ActivationBlock> heldBlocks, IReadOnlyList<ActivationBlock> neededBlocks, int rank, int columns)
    {
        this.rank = rank;
        this.columns = columns;
        held = heldBlocks[rank];
        needed = neededBlocks[rank];
        outgoing = Pieces.Of([.. neededBlocks.Select(block => held.Intersect(block))], rank, columns);
        incoming = Pieces.Of([.. heldBlocks.Select(block => block.Intersect(needed))], rank, columns);
        var kind = TransferCosts.Cost(heldBlocks, neededBlocks, columns).Kind;
        silent = kind == TransferKind.None;
        pointToPoint = kind == TransferKind.Halo;
        if (!needed.IsEmpty && incoming.Blocks.Sum(piece => piece.Elements(columns)) != needed.Elements(columns))
        {
            throw new InvalidOperationException($"internal: rank {rank} needs {needed}, which the held blocks do not cover exactly");
        }

    }

    /// <summary>Bytes this rank sends forward (and receives backward) per call.</summary>
    public long ForwardBytes => outgoing.Buffer.LongLength * TransferCosts.BytesPerElement;

    /// <summary>Bytes this rank sends backward.</summary>
    public long BackwardBytes => incoming.Buffer.LongLength * TransferCosts.BytesPerElement;

    /// <summary>Whether a call reaches MPI (an Alltoallv or a halo exchange): false when every rank holds what it needs.</summary>
    public bool CallsMpi => !silent;

    /// <summary>
    /// No rank moves anything and this rank needs exactly the block it holds: the consumer can read the producer's
    /// buffer itself (and write its input gradient into the producer's output gradient), with no copy either way.
    /// </summary>
    public bool IsIdentity => silent && needed == held;

    /// <summary>From this rank's held block's values to the block it needs.</summary>
    public void Forward(ReadOnlySpan<float> heldValues, Span<float> neededValues, Communicator world) =>
        Move(heldValues, held, neededValues, needed, outgoing, incoming, add: false, world);

    /// <summary>Adds the gradient of the needed block into the held block's gradient (which the caller zeroed) of every rank.</summary>
    public void Backward(ReadOnlySpan<float> neededGradient, Span<float> heldGradient, Communicator world) =>
        Move(neededGradient, needed, heldGradient, held, incoming, outgoing, add: true, world);

    /// <summary><see cref="Forward"/>'s and <see cref="Backward"/>'s copies on this rank without the MPI call between
    /// them (what arrives is whatever the receive buffer holds): the part of a transfer the cost model times on one machine.</summary>
    public void CopiesOnly(ReadOnlySpan<float> heldValues, Span<float> neededValues, ReadOnlySpan<float> neededGradient, Span<float> heldGradient)
    {
        Move(heldValues, held, neededValues, needed, outgoing, incoming, add: false, world: null);
        heldGradient.Clear();
        Move(neededGradient, needed, heldGradient, held, incoming, outgoing, add: true, world: null);
    }

    /// <summary>Elements of this rank's held and needed blocks.</summary>
    public (long Held, long Needed) Elements => (held.Elements(columns), needed.Elements(columns));

    /// <summary>
    /// One direction: the pieces <paramref name="sent"/> of <paramref name="from"/> go to their ranks and the pieces
    /// <paramref name="received"/> arrive into <paramref name="to"/>; this rank's own piece (the same box in both) is
    /// copied locally. Forward sends the held block's pieces and writes; backward is the same exchange with the sides
    /// swapped, and adds (where the gradients of replicated pieces meet).
    /// </summary>
    private void Move(ReadOnlySpan<float> source, ActivationBlock from, Span<float> target, ActivationBlock to, Pieces sent, Pieces received,
        bool add, Communicator? world)
    {
        ActivationBlock.Copy(source, from, target, to, sent.Blocks[rank], columns, add);
        if (silent)
        {
            return;
        }

        for (var q = 0; q < sent.Blocks.Length; q++)
        {
            if (q != rank)
            {
                ActivationBlock.Copy(source, from, sent.Buffer.AsSpan(sent.Displacements[q]), sent.Blocks[q], sent.Blocks[q], columns);
            }
        }

        if (world is not null)
        {
            Exchange(world, sent.Buffer, sent.Counts, sent.Displacements, received.Buffer, received.Counts, received.Displacements);
        }

        for (var q = 0; q < received.Blocks.Length; q++)
        {
            if (q != rank)
            {
                ActivationBlock.Copy(received.Buffer.AsSpan(received.Displacements[q]), received.Blocks[q], target, to, received.Blocks[q], columns, add);
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

    /// <summary>
    /// One side of the exchange: the piece for (or from) each rank, their element counts and displacements in one
    /// message buffer (this rank's own piece is copied, not sent: count 0).
    /// </summary>
    private sealed record Pieces(ActivationBlock[] Blocks, float[] Buffer, int[] Counts, int[] Displacements)
    {
        public static Pieces Of(ActivationBlock[] blocks, int rank, int columns)
        {
            var counts = new int[blocks.Length];
            var displacements = new int[blocks.Length];
            var at = 0;
            for (var q = 0; q < blocks.Length; q++)
            {
                counts[q] = q == rank ? 0 : checked((int)blocks[q].Elements(columns));
                displacements[q] = at;
                at = checked(at + counts[q]);
            }

            return new Pieces(blocks, new float[at], counts, displacements);
        }
    }
}
