using System.Diagnostics;
using System.Runtime.InteropServices;
using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The first-order oracle of PPRS, GD and AGD pipelined over MPI ranks (SPMD): every rank runs the same optimizer on
/// the same iterates and calls <see cref="Evaluate"/> with the same points; rank r runs the chain nodes of its
/// <see cref="LayerRange"/> (a contiguous block of Delta / P nodes, several virtual stages per rank, so Delta = 200
/// runs on a laptop). One call pushes the K points through the ranks as K micro-batches, GPipe-style:
/// <code>
/// forward  k = 0 .. K-1:  x_k from rank r-1 (rank 0: p_k)   -> segment forward (tape k) -> rank r+1 (last rank: f(p_k))
/// backward k = 0 .. K-1:  g_k from rank r+1 (last: df/df = 1) -> segment backward (tape k) -> rank r-1 (rank 0: grad f(p_k))
/// </code>
/// Messages only flow downstream during the forwards and only upstream during the backwards, every send is an Isend
/// completed at the end of its phase and every receive is posted in micro-batch order, so no cycle of waits can form
/// (no deadlock whatever the MPI's eager limit). Then the last rank broadcasts the K values and rank 0 the K
/// gradients, so every rank continues with the same numbers. The node computations are those of the one-process
/// <see cref="ChainOracle"/>, in the same order per micro-batch, so the results are bit-identical to it; the K-average
/// of PPRS is done by the optimizer (<see cref="SmoothedGradient"/>, k = 0 .. K-1) identically on every rank.
/// <para>
/// The clock is the paper's: each call adds 2 (K + Delta - 1) time units (supplement Eq. 14), the makespan of the
/// schedule when every node is its own worker; besides it the oracle measures time in node computations and time in
/// MPI calls on this rank.
/// </para>
/// </summary>
internal sealed class MpiChainOracle : IGradientOracle
{
    private const int ForwardTag = 61;
    private const int BackwardTag = 62;
    private const int MonitorTag = 63;

    private readonly Communicator comm;
    private readonly Chain chain;
    private readonly ChainSegment segment;
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

    /// <param name="comm">The ranks of the pipeline, stage r = rank r.</param>
    /// <param name="chain">The whole chain (every rank builds the same; only this rank's nodes are run here).</param>
    /// <param name="ranges">The node range of each rank, <c>comm.Size</c> of them (default: <see cref="EvenRanges"/>).</param>
    /// <param name="closedForm">f in closed form for <see cref="Monitor"/>, when there is one; otherwise Monitor runs a forward pass over the ranks.</param>
    public MpiChainOracle(Communicator comm, Chain chain, IReadOnlyList<LayerRange>? ranges = null, Func<double[], double>? closedForm = null)
    {
        this.comm = comm;
        this.chain = chain;
        this.closedForm = closedForm;
        ranges ??= EvenRanges(chain.Depth, comm.Size);
        if (ranges.Count != comm.Size)
        {
            throw new InputException($"{ranges.Count} node ranges for {comm.Size} ranks: give one range per rank");
        }

        Ranges = ranges;
        segment = chain.Segment(ranges[comm.Rank]);
        incoming = new double[segment.InputDimension];
        output = new double[segment.OutputDimension];
        previous = comm.Rank - 1;
        next = comm.Rank + 1 < comm.Size ? comm.Rank + 1 : -1;
    }

    public int Dimension => chain.InputDimension;

    public int Depth => chain.Depth;

    /// <summary>The node range of each rank.</summary>
    public IReadOnlyList<LayerRange> Ranges { get; }

    /// <summary>This rank's nodes.</summary>
    public LayerRange Range => segment.Range;

    public long ElapsedTimeUnits { get; private set; }

    /// <summary>The number of <see cref="Evaluate"/> calls.</summary>
    public long Calls { get; private set; }

    /// <summary>Node forward operations this rank performed in <see cref="Evaluate"/> (K x its node count per call).</summary>
    public long ForwardOperations { get; private set; }

    /// <summary>Node backward operations this rank performed in <see cref="Evaluate"/>.</summary>
    public long BackwardOperations { get; private set; }

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
        if (points.Length != count * d || gradients.Length != count * d || values.Length != count)
        {
            throw new ArgumentException(
                $"{count} points of dimension {d} need {count * d} point values, {count} f values and {count * d} gradient values; got {points.Length}, {values.Length}, {gradients.Length}");
        }

        while (tapes.Count < count)
        {
            tapes.Add(segment.NewTape());
            outgoing.Add(new double[Math.Max(segment.InputDimension, segment.OutputDimension)]);
        }

        var isFirst = previous < 0;
        var isLast = next < 0;
        var requests = new List<Request>(count);

        // All forwards: micro-batch k enters from the previous rank (rank 0: the point p_k itself).
        for (var k = 0; k < count; k++)
        {
            ReadOnlySpan<double> x;
            if (isFirst)
            {
                x = points.Slice(k * d, d);
            }
            else
            {
                communication.Start();
                comm.Recv<double>(incoming, previous, ForwardTag);
                communication.Stop();
                x = incoming;
            }

            compute.Start();
            var y = isLast ? output.AsSpan() : outgoing[k].AsSpan(0, segment.OutputDimension);
            segment.Forward(x, y, tapes[k]); // Range.Count node forwards
            compute.Stop();
            ForwardOperations += segment.Range.Count;
            if (isLast)
            {
                values[k] = output[0];
            }
            else
            {
                communication.Start();
                requests.Add(comm.Isend<double>(outgoing[k].AsMemory(0, segment.OutputDimension), next, ForwardTag));
                communication.Stop();
            }
        }

        communication.Start();
        Request.WaitAll(CollectionsMarshal.AsSpan(requests));
        communication.Stop();
        requests.Clear();

        // All backwards: the gradient of micro-batch k with respect to this segment's output enters from the next rank
        // (the last rank starts from df/df = 1); the gradient with respect to its input leaves for the previous rank
        // (rank 0: it is grad f(p_k)).
        var gy = new double[segment.OutputDimension];
        for (var k = 0; k < count; k++)
        {
            if (!isLast)
            {
                communication.Start();
                comm.Recv<double>(gy, next, BackwardTag);
                communication.Stop();
            }

            compute.Start();
            var gx = isFirst ? gradients.Slice(k * d, d) : outgoing[k].AsSpan(0, segment.InputDimension);
            segment.Backward(tapes[k], isLast ? one : gy, gx); // Range.Count node backwards
            compute.Stop();
            BackwardOperations += segment.Range.Count;
            if (!isFirst)
            {
                communication.Start();
                requests.Add(comm.Isend<double>(outgoing[k].AsMemory(0, segment.InputDimension), previous, BackwardTag));
                communication.Stop();
            }
        }

        communication.Start();
        Request.WaitAll(CollectionsMarshal.AsSpan(requests));

        // Every rank continues with the same numbers: values from the last rank, gradients from the first.
        if (comm.Size > 1)
        {
            comm.Bcast(values, comm.Size - 1);
            comm.Bcast(gradients, 0);
        }

        communication.Stop();
        ElapsedTimeUnits += TimeUnits.PipelinedEvaluation(count, Depth); // 2 (K + Delta - 1), Eq. 14
        Calls++;
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
            return chain.Value(theta);
        }

        var tape = tapes.Count > 0 ? tapes[0] : segment.NewTape(); // no micro-batch is in flight between calls
        ReadOnlySpan<double> x = previous < 0 ? theta : ReceiveForward();
        var y = new double[segment.OutputDimension];
        segment.Forward(x, y, tape);
        if (next >= 0)
        {
            comm.Send<double>(y, next, MonitorTag);
        }

        Span<double> value = [next < 0 ? y[0] : 0];
        comm.Bcast(value, comm.Size - 1);
        return value[0];

        double[] ReceiveForward()
        {
            comm.Recv<double>(incoming, previous, MonitorTag);
            return incoming;
        }
    }
}
