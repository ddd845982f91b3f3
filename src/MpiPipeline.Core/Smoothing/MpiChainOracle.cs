using System.Diagnostics;
using System.Runtime.InteropServices;
using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The first-order oracle of PPRS, GD and AGD pipelined over MPI ranks (SPMD): every rank runs the same optimizer on
/// the same iterates and calls <see cref="Evaluate"/> with the same points; rank r runs the chain nodes of its
/// <see cref="LayerRange"/> (a contiguous block of Delta / P nodes, several virtual stages per rank, so Delta = 200
/// runs on a laptop). One call pushes the K points, each on the m terms of the finite sum, through the ranks as K m
/// micro-batches (b = k m + i: point k on term i), GPipe-style:
/// <code>
/// forward  b = 0 .. Km-1:  x_b from rank r-1 (rank 0: p_k)   -> segment forward (tape b) -> rank r+1 (last rank: f_i(p_k))
/// backward b = 0 .. Km-1:  g_b from rank r+1 (last: df/df = 1) -> segment backward (tape b) -> rank r-1 (rank 0: grad f_i(p_k))
/// </code>
/// Messages only flow downstream during the forwards and only upstream during the backwards, every send is an Isend
/// completed at the end of its phase and every receive is posted in micro-batch order, so no cycle of waits can form
/// (no deadlock whatever the MPI's eager limit). Then the last rank broadcasts the K m values and rank 0 the K m
/// gradients, every rank takes their means over the terms, and continues with the same numbers. The node computations
/// are those of the one-process <see cref="ChainOracle"/>, in the same order per micro-batch, so the results are
/// bit-identical to it; the K-average of PPRS is done by the optimizer identically on every rank.
/// <para>
/// The clock is measured, not assumed: a dependency clock like <see cref="ChainOracle"/>'s, kept where the operations
/// happen. Each rank keeps, for each of its nodes, when it is next free; an operation starts when its node is free and
/// its input is ready and takes one time unit; every message carries the time its payload became ready (one extra
/// value after the vector), so a rank learns its neighbour's times only through the schedule actually run. A call adds
/// the latest end over all ranks (one Allreduce): 2 (K m + Delta - 1) for the GPipe schedule, 2 K m Delta when the
/// micro-batches go one at a time (<see cref="ChainSchedule.OneAtATime"/>). Besides it the oracle counts each node's
/// forward and backward operations and measures time in node computations and in MPI calls on this rank.
/// </para>
/// </summary>
internal sealed class MpiChainOracle : IGradientOracle
{
    private const int ForwardTag = 61;
    private const int BackwardTag = 62;
    private const int MonitorTag = 63;

    private readonly Communicator comm;
    private readonly Chain chain;
    private readonly Chain[] terms;
    private readonly ChainSegment[] segments; // this rank's nodes of each term
    private readonly ChainSegment segment;
    private readonly ChainSchedule schedule;
    private readonly long[] nodeFree; // when each of this rank's nodes is next free, in this call's time units
    private long[] forwardReady = []; // per micro-batch: when the last node of this rank finished its forward
    private double[] termValues = [];
    private double[] termGradients = [];
    private readonly Func<double[], double>? closedForm;
    private readonly List<SegmentTape> tapes = [];
    private readonly List<double[]> outgoing = []; // one send buffer per micro-batch in flight
    private readonly double[] incoming;
    private readonly double[] output;
    private readonly double[] one = [1.0];
    private readonly int previous;
    private readonly int next;
    private readonly Stopwatch compute = new();
    private readonly Stopwatch communication = new();
    private readonly long[] forwardOperationsOf;
    private readonly long[] backwardOperationsOf;

    /// <param name="comm">The ranks of the pipeline, stage r = rank r.</param>
    /// <param name="chain">The whole chain (every rank builds the same; only this rank's nodes are run here).</param>
    /// <param name="ranges">The node range of each rank, <c>comm.Size</c> of them (default: <see cref="EvenRanges"/>).</param>
    /// <param name="closedForm">f in closed form for <see cref="Monitor"/>, when there is one; otherwise Monitor runs a forward pass over the ranks.</param>
    /// <param name="terms">m, the terms of the finite sum: the same chain m times (<see cref="ChainOracle(Chain, int, ChainSchedule)"/>).</param>
    /// <param name="schedule">The micro-batch order (default GPipe).</param>
    public MpiChainOracle(Communicator comm, Chain chain, IReadOnlyList<LayerRange>? ranges = null, Func<double[], double>? closedForm = null,
        int terms = 1, ChainSchedule schedule = ChainSchedule.Pipelined)
        : this(comm, Enumerable.Repeat(chain, terms >= 1 ? terms : throw new InputException($"a finite sum needs m >= 1 terms, not {terms}")).ToArray(),
            ranges, closedForm, schedule)
    {
    }

    /// <param name="comm">The ranks of the pipeline, stage r = rank r.</param>
    /// <param name="terms">f_1 .. f_m, chains of the same depth and shapes: f = (1/m) sum_i f_i.</param>
    /// <param name="ranges">The node range of each rank, <c>comm.Size</c> of them (default: <see cref="EvenRanges"/>).</param>
    /// <param name="closedForm">f in closed form for <see cref="Monitor"/>, when there is one; otherwise Monitor runs a forward pass over the ranks.</param>
    /// <param name="schedule">The micro-batch order (default GPipe).</param>
    public MpiChainOracle(Communicator comm, IReadOnlyList<Chain> terms, IReadOnlyList<LayerRange>? ranges, Func<double[], double>? closedForm,
        ChainSchedule schedule)
    {
        this.comm = comm;
        this.terms = FiniteSum.Check(terms);
        chain = this.terms[0];
        this.closedForm = closedForm;
        this.schedule = schedule;
        ranges ??= EvenRanges(chain.Depth, comm.Size);
        if (ranges.Count != comm.Size)
        {
            throw new InputException($"{ranges.Count} node ranges for {comm.Size} ranks: give one range per rank");
        }

        Ranges = ranges;
        segments = this.terms.Select(t => t.Segment(ranges[comm.Rank])).ToArray();
        segment = segments[0];
        nodeFree = new long[segment.Range.Count];
        forwardOperationsOf = new long[segment.Range.Count];
        backwardOperationsOf = new long[segment.Range.Count];
        incoming = new double[Math.Max(segment.InputDimension, segment.OutputDimension) + 1];
        output = new double[segment.OutputDimension];
        previous = comm.Rank - 1;
        next = comm.Rank + 1 < comm.Size ? comm.Rank + 1 : -1;
    }

    public int Dimension => chain.InputDimension;

    public int Depth => chain.Depth;

    public int Terms => terms.Length;

    /// <summary>The node range of each rank.</summary>
    public IReadOnlyList<LayerRange> Ranges { get; }

    /// <summary>This rank's nodes.</summary>
    public LayerRange Range => segment.Range;

    public long ElapsedTimeUnits { get; private set; }

    /// <summary>The number of <see cref="Evaluate"/> calls.</summary>
    public long Calls { get; private set; }

    /// <summary>The makespan of the last call over all ranks, in time units.</summary>
    public long LastCallTimeUnits { get; private set; }

    /// <summary>Node forward operations this rank performed in <see cref="Evaluate"/> (K m x its node count per call).</summary>
    public long ForwardOperations => forwardOperationsOf.Sum();

    /// <summary>Node backward operations this rank performed in <see cref="Evaluate"/>.</summary>
    public long BackwardOperations => backwardOperationsOf.Sum();

    /// <summary>Forward operations of this rank's node Range.Start + j.</summary>
    public long ForwardOperationsOf(int j) => forwardOperationsOf[j];

    /// <summary>Backward operations of this rank's node Range.Start + j.</summary>
    public long BackwardOperationsOf(int j) => backwardOperationsOf[j];

    /// <summary>Time in this rank's node computations (forward and backward) inside <see cref="Evaluate"/>.</summary>
    public TimeSpan ComputeTime => compute.Elapsed;

    /// <summary>Time in MPI calls inside <see cref="Evaluate"/> (waiting for neighbours included).</summary>
    public TimeSpan CommunicationTime => communication.Elapsed;

    /// <summary>
    /// Delta nodes over P ranks as evenly as possible, the first Delta mod P ranks taking one more:
    /// <see cref="Partition.ByBalance"/> with balance ceil/floor(Delta/P). Every rank needs at least one node.
    /// </summary>
    public static IReadOnlyList<LayerRange> EvenRanges(int depth, int ranks)
    {
        if (ranks > depth)
        {
            throw new InputException(
                $"{ranks} ranks for a chain of Delta = {depth} nodes: every rank runs at least one node, so use at most {depth} ranks (or a larger --delta)");
        }

        var balance = Enumerable.Range(0, ranks).Select(r => depth / ranks + (r < depth % ranks ? 1 : 0)).ToArray();
        return Partition.ByBalance(depth, balance);
    }

    public void Evaluate(ReadOnlySpan<double> points, int count, Span<double> values, Span<double> gradients)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var d = Dimension;
        var m = Terms;
        if (points.Length != count * d || gradients.Length != count * d || values.Length != count)
        {
            throw new ArgumentException(
                $"{count} points of dimension {d} need {count * d} point values, {count} f values and {count * d} gradient values; got {points.Length}, {values.Length}, {gradients.Length}");
        }

        var batches = count * m;
        var width = Math.Max(segment.InputDimension, segment.OutputDimension) + 1; // the vector and its ready time
        while (tapes.Count < batches)
        {
            tapes.Add(segment.NewTape());
            outgoing.Add(new double[width]);
        }

        if (termValues.Length < batches)
        {
            termValues = new double[batches];
            termGradients = new double[batches * d];
            forwardReady = new long[batches];
        }

        Array.Clear(nodeFree);
        long latest = 0;
        var requests = new List<Request>(batches);
        if (schedule == ChainSchedule.Pipelined)
        {
            for (var b = 0; b < batches; b++)
            {
                Forward(b, requests, points, ref latest);
            }

            WaitAll(requests);
            for (var b = 0; b < batches; b++)
            {
                Backward(b, requests, ref latest);
            }

            WaitAll(requests);
        }
        else
        {
            for (var b = 0; b < batches; b++)
            {
                Forward(b, requests, points, ref latest);
                WaitAll(requests);
                Backward(b, requests, ref latest);
                WaitAll(requests);
            }
        }

        communication.Start();

        // Every rank continues with the same numbers: values from the last rank, gradients from the first.
        if (comm.Size > 1)
        {
            comm.Bcast(termValues.AsSpan(0, batches), comm.Size - 1);
            comm.Bcast(termGradients.AsSpan(0, batches * d), 0);
            latest = comm.Allreduce(latest, ReduceOp.Max);
        }

        communication.Stop();
        FiniteSum.Average(termValues, termGradients, count, m, d, values, gradients);
        LastCallTimeUnits = latest;
        ElapsedTimeUnits += latest;
        Calls++;
    }

    /// <summary>Micro-batch b forward through this rank's nodes, each node op one time unit after its input and its node are ready.</summary>
    private void Forward(int b, List<Request> requests, ReadOnlySpan<double> points, ref long latest)
    {
        var d = Dimension;
        var (k, i) = (b / Terms, b % Terms);
        var isLast = next < 0;
        ReadOnlySpan<double> x;
        long ready = 0;
        if (previous < 0)
        {
            x = points.Slice(k * d, d);
        }
        else
        {
            x = ReceiveStamped(previous, ForwardTag, segment.InputDimension, out ready);
        }

        compute.Start();
        var y = isLast ? output.AsSpan() : outgoing[b].AsSpan(0, segment.OutputDimension);
        segments[i].Forward(x, y, tapes[b]); // Range.Count node forwards
        compute.Stop();
        for (var j = 0; j < nodeFree.Length; j++)
        {
            ready = nodeFree[j] = Math.Max(nodeFree[j], ready) + 1;
            forwardOperationsOf[j]++;
        }

        forwardReady[b] = ready;
        latest = Math.Max(latest, ready);
        if (isLast)
        {
            termValues[b] = output[0];
        }
        else
        {
            outgoing[b][segment.OutputDimension] = ready;
            communication.Start();
            requests.Add(comm.Isend<double>(outgoing[b].AsMemory(0, segment.OutputDimension + 1), next, ForwardTag));
            communication.Stop();
        }
    }

    /// <summary>
    /// Micro-batch b backward: the gradient with respect to this segment's output enters from the next rank (the last
    /// rank starts from df/df = 1 once its own forward b is done); the gradient with respect to its input leaves for the
    /// previous rank (rank 0: it is grad f_i(p_k)).
    /// </summary>
    private void Backward(int b, List<Request> requests, ref long latest)
    {
        var d = Dimension;
        var isFirst = previous < 0;
        ReadOnlySpan<double> gy;
        long ready;
        if (next < 0)
        {
            gy = one;
            ready = forwardReady[b];
        }
        else
        {
            gy = ReceiveStamped(next, BackwardTag, segment.OutputDimension, out ready);
        }

        compute.Start();
        // Not the first rank: into the forward phase's send buffer of micro-batch b, free again (its Isend completed).
        var gx = isFirst ? termGradients.AsSpan(b * d, d) : outgoing[b].AsSpan(0, segment.InputDimension);
        segments[b % Terms].Backward(tapes[b], gy, gx); // Range.Count node backwards
        compute.Stop();
        for (var j = nodeFree.Length - 1; j >= 0; j--)
        {
            ready = nodeFree[j] = Math.Max(nodeFree[j], ready) + 1;
            backwardOperationsOf[j]++;
        }

        latest = Math.Max(latest, ready);
        if (!isFirst)
        {
            outgoing[b][segment.InputDimension] = ready;
            communication.Start();
            requests.Add(comm.Isend<double>(outgoing[b].AsMemory(0, segment.InputDimension + 1), previous, BackwardTag));
            communication.Stop();
        }
    }

    private void WaitAll(List<Request> requests)
    {
        communication.Start();
        Request.WaitAll(CollectionsMarshal.AsSpan(requests));
        communication.Stop();
        requests.Clear();
    }

    /// <summary>
    /// f(theta) for the records, off the clock: the closed form when the problem has one, otherwise one forward pass
    /// through the ranks (the last rank broadcasts the value). Every rank must call it with the same theta.
    /// </summary>
    public double Monitor(ReadOnlySpan<double> theta)
    {
        if (closedForm is not null)
        {
            return closedForm(theta.ToArray());
        }

        if (comm.Size == 1)
        {
            return FiniteSum.Value(terms, theta);
        }

        var distinct = terms.All(t => ReferenceEquals(t, terms[0])) ? 1 : terms.Length;
        var sum = 0.0;
        for (var i = 0; i < distinct; i++)
        {
            sum += MonitorTerm(i, theta);
        }

        return sum / distinct;
    }

    /// <summary>f_i(theta) by one forward pass through the ranks; the last rank broadcasts it.</summary>
    private double MonitorTerm(int i, ReadOnlySpan<double> theta)
    {
        var tape = tapes.Count > 0 ? tapes[0] : segment.NewTape(); // no micro-batch is in flight between calls
        ReadOnlySpan<double> x = previous < 0 ? theta : ReceiveForward();
        var y = new double[segment.OutputDimension];
        segments[i].Forward(x, y, tape);
        if (next >= 0)
        {
            comm.Send<double>(y, next, MonitorTag);
        }

        Span<double> value = [next < 0 ? y[0] : 0];
        comm.Bcast(value, comm.Size - 1);
        return value[0];

        Span<double> ReceiveForward()
        {
            comm.Recv<double>(incoming.AsSpan(0, segment.InputDimension), previous, MonitorTag);
            return incoming.AsSpan(0, segment.InputDimension);
        }
    }

    /// <summary>
    /// Receives <paramref name="dimension"/> values from <paramref name="peer"/> followed by the time they became ready
    /// there (the dependency clock rides on every message), into <c>incoming</c>.
    /// </summary>
    private Span<double> ReceiveStamped(int peer, int tag, int dimension, out long ready)
    {
        communication.Start();
        comm.Recv<double>(incoming.AsSpan(0, dimension + 1), peer, tag);
        communication.Stop();
        ready = (long)incoming[dimension];
        return incoming.AsSpan(0, dimension);
    }
}
