using System.Buffers;

namespace MpiPipeline.Mpi;

/// <summary>
/// An MPI communicator. Every call goes through <see cref="MpiException.Check"/>; every communicator this class
/// creates gets MPI_ERRORS_RETURN. Communicators made by Dup/Split must be freed with <see cref="Free"/>, collectively,
/// on every rank: never in a finalizer (ranks would free at different times).
/// </summary>
public sealed unsafe class Communicator
{
    private nint handle;

    internal Communicator(nint handle, bool predefined)
    {
        this.handle = handle;
        IsPredefined = predefined;
        var value = 0;
        MpiException.Check(NativeMethods.MPI_Comm_rank(handle, &value));
        Rank = value;
        MpiException.Check(NativeMethods.MPI_Comm_size(handle, &value));
        Size = value;
        MpiException.Check(NativeMethods.MPI_Comm_set_errhandler(handle, MpiLibrary.Table.ErrorsReturn));
    }

    public int Rank { get; }
    public int Size { get; }
    public bool IsPredefined { get; }
    public bool IsFreed => handle == MpiLibrary.Table.CommNull;

    /// <summary>MPI_COMM_WORLD itself: its ranks are the ranks the user sees in every message.</summary>
    internal bool IsWorld => handle == MpiLibrary.Table.CommWorld;

    /// <summary>Wildcards and the null process, with the loaded ABI's values (they differ between MPICH and Open MPI).</summary>
    public static int AnySource => MpiLibrary.Table.AnySource;
    public static int ProcNull => MpiLibrary.Table.ProcNull;
    public const int AnyTag = AbiTable.AnyTag;

    internal nint Handle => IsFreed ? throw new ObjectDisposedException(nameof(Communicator), "this communicator was freed") : handle;

    // ---- point to point ----

    public void Send<T>(ReadOnlySpan<T> buffer, int dest, int tag) where T : unmanaged
    {
        fixed (T* p = buffer)
        {
            using (Watchdog.Enter("MPI_Send", this, to: dest))
            {
                MpiException.Check(NativeMethods.MPI_Send(p, buffer.Length, Datatype.Of<T>(), dest, tag, Handle));
            }
        }
    }

    public Status Recv<T>(Span<T> buffer, int source, int tag) where T : unmanaged
    {
        var status = stackalloc byte[Status.MaxNativeSize];
        fixed (T* p = buffer)
        {
            using (Watchdog.Enter("MPI_Recv", this, from: source))
            {
                MpiException.Check(NativeMethods.MPI_Recv(p, buffer.Length, Datatype.Of<T>(), source, tag, Handle, status));
            }
        }

        return Status.Read(status);
    }

    public Status Sendrecv<T>(ReadOnlySpan<T> send, int dest, int sendTag, Span<T> receive, int source, int receiveTag)
        where T : unmanaged
    {
        var status = stackalloc byte[Status.MaxNativeSize];
        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            using (Watchdog.Enter("MPI_Sendrecv", this, from: source, to: dest))
            {
                MpiException.Check(NativeMethods.MPI_Sendrecv(s, send.Length, type, dest, sendTag, r, receive.Length, type, source, receiveTag, Handle, status));
            }
        }

        return Status.Read(status);
    }

    /// <summary>Starts a send; the buffer stays pinned (owned by the Request) until it completes.</summary>
    public Request Isend<T>(ReadOnlyMemory<T> buffer, int dest, int tag) where T : unmanaged
    {
        var pin = buffer.Pin();
        nint request = 0;
        var code = NativeMethods.MPI_Isend(pin.Pointer, buffer.Length, Datatype.Of<T>(), dest, tag, Handle, &request);
        if (code != AbiTable.Success)
        {
            pin.Dispose();
        }

        MpiException.Check(code);
        return new Request(request, pin, isReceive: false, this, to: dest);
    }

    /// <summary>Starts a receive; the buffer stays pinned (owned by the Request) until it completes.</summary>
    public Request Irecv<T>(Memory<T> buffer, int source, int tag) where T : unmanaged
    {
        var pin = buffer.Pin();
        nint request = 0;
        var code = NativeMethods.MPI_Irecv(pin.Pointer, buffer.Length, Datatype.Of<T>(), source, tag, Handle, &request);
        if (code != AbiTable.Success)
        {
            pin.Dispose();
        }

        MpiException.Check(code);
        return new Request(request, pin, isReceive: true, this, from: source);
    }

    public Status Probe(int source, int tag)
    {
        var status = stackalloc byte[Status.MaxNativeSize];
        using (Watchdog.Enter("MPI_Probe", this, from: source))
        {
            MpiException.Check(NativeMethods.MPI_Probe(source, tag, Handle, status));
        }

        return Status.Read(status);
    }

    public bool Iprobe(int source, int tag, out Status result)
    {
        var status = stackalloc byte[Status.MaxNativeSize];
        var flag = 0;
        MpiException.Check(NativeMethods.MPI_Iprobe(source, tag, Handle, &flag, status));
        result = flag != 0 ? Status.Read(status) : default;
        return flag != 0;
    }

    // ---- collectives ----

    public void Barrier()
    {
        using (Watchdog.Enter("MPI_Barrier", this))
        {
            MpiException.Check(NativeMethods.MPI_Barrier(Handle));
        }
    }

    public void Bcast<T>(Span<T> buffer, int root) where T : unmanaged
    {
        fixed (T* p = buffer)
        {
            using (Watchdog.Enter("MPI_Bcast", this))
            {
                MpiException.Check(NativeMethods.MPI_Bcast(p, buffer.Length, Datatype.Of<T>(), root, Handle));
            }
        }
    }

    /// <summary>Reduces <paramref name="send"/> into <paramref name="receive"/> at root (receive is ignored elsewhere).</summary>
    public void Reduce<T>(ReadOnlySpan<T> send, Span<T> receive, ReduceOp op, int root) where T : unmanaged
    {
        if (Rank == root)
        {
            RequireLength(receive.Length, send.Length, nameof(receive));
        }

        fixed (T* s = send)
        fixed (T* r = receive)
        {
            using (Watchdog.Enter("MPI_Reduce", this))
            {
                MpiException.Check(NativeMethods.MPI_Reduce(s, r, send.Length, Datatype.Of<T>(), op.Handle(), root, Handle));
            }
        }
    }

    /// <summary>In-place reduce: at root the buffer receives the result (MPI_IN_PLACE); elsewhere it is sent.</summary>
    public void Reduce<T>(Span<T> buffer, ReduceOp op, int root) where T : unmanaged
    {
        fixed (T* p = buffer)
        {
            using (Watchdog.Enter("MPI_Reduce", this))
            {
                var send = Rank == root ? (void*)MpiLibrary.Table.InPlace : p;
                MpiException.Check(NativeMethods.MPI_Reduce(send, p, buffer.Length, Datatype.Of<T>(), op.Handle(), root, Handle));
            }
        }
    }

    public void Allreduce<T>(ReadOnlySpan<T> send, Span<T> receive, ReduceOp op) where T : unmanaged
    {
        RequireLength(receive.Length, send.Length, nameof(receive));
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            using (Watchdog.Enter("MPI_Allreduce", this))
            {
                MpiException.Check(NativeMethods.MPI_Allreduce(s, r, send.Length, Datatype.Of<T>(), op.Handle(), Handle));
            }
        }
    }

    /// <summary>In-place Allreduce (MPI_IN_PLACE): the buffer is replaced by the reduction over all ranks.</summary>
    public void Allreduce<T>(Span<T> buffer, ReduceOp op) where T : unmanaged
    {
        fixed (T* p = buffer)
        {
            using (Watchdog.Enter("MPI_Allreduce", this))
            {
                MpiException.Check(NativeMethods.MPI_Allreduce((void*)MpiLibrary.Table.InPlace, p, buffer.Length, Datatype.Of<T>(), op.Handle(), Handle));
            }
        }
    }

    /// <summary>
    /// In-place Allreduce that waits like <see cref="Request.WaitPolling"/>: MPI_Iallreduce, then MPI_Test polls with
    /// <paramref name="idle"/> between them, so a rank that arrives early does not busy-poll a core that a rank still
    /// computing needs (more ranks than cores). Blocks until the reduction is complete, like the plain Allreduce.
    /// </summary>
    public void Allreduce<T>(Span<T> buffer, ReduceOp op, IdleWait idle) where T : unmanaged
    {
        fixed (T* p = buffer)
        {
            nint handle = 0;
            MpiException.Check(NativeMethods.MPI_Iallreduce((void*)MpiLibrary.Table.InPlace, p, buffer.Length, Datatype.Of<T>(), op.Handle(), Handle, &handle));
            // The wait stays inside `fixed`: the buffer must not move while MPI owns it. (If the wait throws, MPI may
            // still own it, but an MPI error is fatal here: the entry point aborts the job.)
            new Request(handle, default, isReceive: false, this).WaitPolling(idle, "MPI_Iallreduce (polling wait)");
        }
    }

    /// <summary>
    /// Starts an in-place MPI_Iallreduce over <paramref name="buffer"/>. The request pins nothing: the buffer must be
    /// memory that does not move (native memory, such as a stage's flat gradient buffer) and stay untouched until the
    /// request completes. Every rank of the group must start its Iallreduces in the same order.
    /// </summary>
    public Request IallreduceInPlace<T>(Span<T> buffer, ReduceOp op) where T : unmanaged
    {
        fixed (T* p = buffer)
        {
            nint handle = 0;
            MpiException.Check(NativeMethods.MPI_Iallreduce((void*)MpiLibrary.Table.InPlace, p, buffer.Length, Datatype.Of<T>(), op.Handle(), Handle, &handle));
            return new Request(handle, default, isReceive: false, this);
        }
    }

    /// <summary>Allreduce of one value.</summary>
    public T Allreduce<T>(T value, ReduceOp op) where T : unmanaged
    {
        Span<T> one = [value];
        Allreduce(one, op);
        return one[0];
    }

    /// <summary>Gathers equal blocks at root: receive holds Size * send.Length elements there (ignored elsewhere).</summary>
    public void Gather<T>(ReadOnlySpan<T> send, Span<T> receive, int root) where T : unmanaged
    {
        if (Rank == root)
        {
            RequireLength(receive.Length, send.Length * Size, nameof(receive));
        }

        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            using (Watchdog.Enter("MPI_Gather", this))
            {
                MpiException.Check(NativeMethods.MPI_Gather(s, send.Length, type, r, send.Length, type, root, Handle));
            }
        }
    }

    public void Allgather<T>(ReadOnlySpan<T> send, Span<T> receive) where T : unmanaged
    {
        RequireLength(receive.Length, send.Length * Size, nameof(receive));
        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            using (Watchdog.Enter("MPI_Allgather", this))
            {
                MpiException.Check(NativeMethods.MPI_Allgather(s, send.Length, type, r, send.Length, type, Handle));
            }
        }
    }

    /// <summary>
    /// Allgather that waits like <see cref="Request.WaitPolling"/>: MPI_Iallgather polled with MPI_Test and
    /// <paramref name="idle"/> between the polls, so a rank that arrives early leaves its core to the ranks still
    /// computing (more ranks than cores). Blocks until complete, like the plain Allgather.
    /// </summary>
    public void Allgather<T>(ReadOnlySpan<T> send, Span<T> receive, IdleWait idle) where T : unmanaged
    {
        RequireLength(receive.Length, send.Length * Size, nameof(receive));
        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            nint request = 0;
            MpiException.Check(NativeMethods.MPI_Iallgather(s, send.Length, type, r, send.Length, type, Handle, &request));
            // The wait stays inside `fixed`: the buffers must not move while MPI owns them.
            new Request(request, default, isReceive: false, this).WaitPolling(idle, "MPI_Iallgather (polling wait)");
        }
    }

    /// <summary>
    /// Starts an MPI_Iallgather; the request pins both buffers until it completes, and neither may be touched before.
    /// Every rank of the group must start its nonblocking collectives in the same order.
    /// </summary>
    public Request Iallgather<T>(ReadOnlyMemory<T> send, Memory<T> receive) where T : unmanaged
    {
        RequireLength(receive.Length, send.Length * Size, nameof(receive));
        var type = Datatype.Of<T>();
        MemoryHandle[] pins = [send.Pin(), receive.Pin()];
        nint request = 0;
        var code = NativeMethods.MPI_Iallgather(pins[0].Pointer, send.Length, type, pins[1].Pointer, send.Length, type, Handle, &request);
        return Started(code, request, pins);
    }

    /// <summary>Gathers blocks of different lengths on every rank: block i (counts[i] elements) lands at displacements[i].</summary>
    public void Allgatherv<T>(ReadOnlySpan<T> send, Span<T> receive, ReadOnlySpan<int> counts, ReadOnlySpan<int> displacements)
        where T : unmanaged
    {
        CheckGathered(receive.Length, counts, displacements);
        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        fixed (int* c = counts)
        fixed (int* d = displacements)
        {
            using (Watchdog.Enter("MPI_Allgatherv", this))
            {
                MpiException.Check(NativeMethods.MPI_Allgatherv(s, send.Length, type, r, c, d, type, Handle));
            }
        }
    }

    /// <summary>
    /// Allgatherv that waits like <see cref="Request.WaitPolling"/> (MPI_Iallgatherv polled with <paramref name="idle"/>):
    /// a large payload goes by rendezvous, and MPI's own blocking wait would busy-poll a core a peer still needs.
    /// </summary>
    public void Allgatherv<T>(ReadOnlySpan<T> send, Span<T> receive, ReadOnlySpan<int> counts, ReadOnlySpan<int> displacements, IdleWait idle)
        where T : unmanaged
    {
        CheckGathered(receive.Length, counts, displacements);
        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        fixed (int* c = counts)
        fixed (int* d = displacements)
        {
            nint request = 0;
            MpiException.Check(NativeMethods.MPI_Iallgatherv(s, send.Length, type, r, c, d, type, Handle, &request));
            new Request(request, default, isReceive: false, this).WaitPolling(idle, "MPI_Iallgatherv (polling wait)");
        }
    }

    /// <summary>
    /// Starts an MPI_Iallgatherv; the request pins the buffers and the count and displacement arrays (MPI reads them
    /// until completion), none of which may be touched before it completes. Every rank of the group must start its
    /// nonblocking collectives in the same order.
    /// </summary>
    public Request Iallgatherv<T>(ReadOnlyMemory<T> send, Memory<T> receive, ReadOnlyMemory<int> counts, ReadOnlyMemory<int> displacements)
        where T : unmanaged
    {
        CheckGathered(receive.Length, counts.Span, displacements.Span);
        var type = Datatype.Of<T>();
        MemoryHandle[] pins = [send.Pin(), receive.Pin(), counts.Pin(), displacements.Pin()];
        nint request = 0;
        var code = NativeMethods.MPI_Iallgatherv(pins[0].Pointer, send.Length, type, pins[1].Pointer, (int*)pins[2].Pointer,
            (int*)pins[3].Pointer, type, Handle, &request);
        return Started(code, request, pins);
    }

    /// <summary>Scatters equal blocks from root: send holds Size * receive.Length elements there (ignored elsewhere).</summary>
    public void Scatter<T>(ReadOnlySpan<T> send, Span<T> receive, int root) where T : unmanaged
    {
        if (Rank == root)
        {
            RequireLength(send.Length, receive.Length * Size, nameof(send));
        }

        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            using (Watchdog.Enter("MPI_Scatter", this))
            {
                MpiException.Check(NativeMethods.MPI_Scatter(s, receive.Length, type, r, receive.Length, type, root, Handle));
            }
        }
    }

    /// <summary>Reduces Size blocks of receive.Length elements and leaves block Rank on this rank.</summary>
    public void ReduceScatterBlock<T>(ReadOnlySpan<T> send, Span<T> receive, ReduceOp op) where T : unmanaged
    {
        RequireLength(send.Length, receive.Length * Size, nameof(send));
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            using (Watchdog.Enter("MPI_Reduce_scatter_block", this))
            {
                MpiException.Check(NativeMethods.MPI_Reduce_scatter_block(s, r, receive.Length, Datatype.Of<T>(), op.Handle(), Handle));
            }
        }
    }

    /// <summary>Block j of send goes to rank j; block i of receive comes from rank i.</summary>
    public void Alltoall<T>(ReadOnlySpan<T> send, Span<T> receive) where T : unmanaged
    {
        RequireLength(send.Length, receive.Length, nameof(send));
        if (send.Length % Size != 0)
        {
            throw new ArgumentException($"Alltoall buffers of {send.Length} elements do not split into {Size} equal blocks");
        }

        var block = send.Length / Size;
        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        {
            using (Watchdog.Enter("MPI_Alltoall", this))
            {
                MpiException.Check(NativeMethods.MPI_Alltoall(s, block, type, r, block, type, Handle));
            }
        }
    }

    /// <summary>
    /// Blocks of different lengths to and from every rank: sendCounts[j] elements at sendDisplacements[j] of
    /// <paramref name="send"/> go to rank j; receiveCounts[i] elements from rank i land at receiveDisplacements[i]. Each
    /// pair of ranks must agree on the count between them (rank i's sendCounts[j] is rank j's receiveCounts[i]).
    /// </summary>
    public void Alltoallv<T>(ReadOnlySpan<T> send, ReadOnlySpan<int> sendCounts, ReadOnlySpan<int> sendDisplacements,
        Span<T> receive, ReadOnlySpan<int> receiveCounts, ReadOnlySpan<int> receiveDisplacements) where T : unmanaged
    {
        CheckBlocks(sendCounts, sendDisplacements, send.Length, nameof(send));
        CheckBlocks(receiveCounts, receiveDisplacements, receive.Length, nameof(receive));
        var type = Datatype.Of<T>();
        fixed (T* s = send)
        fixed (T* r = receive)
        fixed (int* sc = sendCounts)
        fixed (int* sd = sendDisplacements)
        fixed (int* rc = receiveCounts)
        fixed (int* rd = receiveDisplacements)
        {
            using (Watchdog.Enter("MPI_Alltoallv", this))
            {
                MpiException.Check(NativeMethods.MPI_Alltoallv(s, sc, sd, type, r, rc, rd, type, Handle));
            }
        }
    }

    // ---- communicator management ----

    public Communicator Dup()
    {
        nint created = 0;
        using (Watchdog.Enter("MPI_Comm_dup", this))
        {
            MpiException.Check(NativeMethods.MPI_Comm_dup(Handle, &created));
        }

        return new Communicator(created, predefined: false);
    }

    /// <summary>Ranks with the same color form a new communicator, ordered by key; a negative color returns null.</summary>
    public Communicator? Split(int color, int key)
    {
        nint created = 0;
        using (Watchdog.Enter("MPI_Comm_split", this))
        {
            MpiException.Check(NativeMethods.MPI_Comm_split(Handle, color < 0 ? AbiTable.Undefined : color, key, &created));
        }

        return created == MpiLibrary.Table.CommNull ? null : new Communicator(created, predefined: false);
    }

    /// <summary>The ranks that share this node's memory (MPI_COMM_TYPE_SHARED): its Rank is the node-local rank.</summary>
    public Communicator SplitShared(int key = 0)
    {
        nint created = 0;
        using (Watchdog.Enter("MPI_Comm_split_type", this))
        {
            MpiException.Check(NativeMethods.MPI_Comm_split_type(Handle, MpiLibrary.Table.CommTypeShared, key, MpiLibrary.Table.InfoNull, &created));
        }

        return new Communicator(created, predefined: false);
    }

    /// <summary>Frees the communicator (collective over its ranks). Predefined communicators cannot be freed.</summary>
    public void Free()
    {
        if (IsPredefined)
        {
            throw new InvalidOperationException("MPI_COMM_WORLD and MPI_COMM_SELF are predefined and cannot be freed.");
        }

        if (IsFreed)
        {
            return;
        }

        var h = handle;
        MpiException.Check(NativeMethods.MPI_Comm_free(&h));
        handle = MpiLibrary.Table.CommNull;
    }

    /// <summary>The request of a collective that MPI started (code success); otherwise the pins go and the error is thrown.</summary>
    private Request Started(int code, nint request, MemoryHandle[] pins)
    {
        if (code != AbiTable.Success)
        {
            foreach (var pin in pins)
            {
                pin.Dispose();
            }
        }

        MpiException.Check(code);
        return new Request(request, pins, this);
    }

    /// <summary>Allgatherv's blocks: one count and displacement per rank, each block inside the receive buffer.</summary>
    private void CheckGathered(int receiveLength, ReadOnlySpan<int> counts, ReadOnlySpan<int> displacements)
    {
        RequireLength(counts.Length, Size, nameof(counts));
        RequireLength(displacements.Length, Size, nameof(displacements));
        for (var i = 0; i < Size; i++)
        {
            if (counts[i] < 0 || displacements[i] < 0 || (long)displacements[i] + counts[i] > receiveLength)
            {
                throw new ArgumentException($"block {i} ({counts[i]} elements at {displacements[i]}) does not fit a receive buffer of {receiveLength}");
            }
        }
    }

    private void CheckBlocks(ReadOnlySpan<int> counts, ReadOnlySpan<int> displacements, int length, string name)
    {
        RequireLength(counts.Length, Size, name + " counts");
        RequireLength(displacements.Length, Size, name + " displacements");
        for (var i = 0; i < Size; i++)
        {
            if (counts[i] < 0 || displacements[i] < 0 || (long)displacements[i] + counts[i] > length)
            {
                throw new ArgumentException($"{name} block {i} ({counts[i]} elements at {displacements[i]}) does not fit a buffer of {length}");
            }
        }
    }

    private static void RequireLength(int actual, long expected, string name)
    {
        if (actual < expected)
        {
            throw new ArgumentException($"buffer '{name}' holds {actual} elements, {expected} are needed", name);
        }
    }
}
