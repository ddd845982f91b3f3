using MpiPipeline.Pipeline;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The first-order oracle the optimizers call: f and a (sub)gradient at K points at once, the K points pushed through
/// the computation graph as K micro-batches. One call costs 2 (K + Delta - 1) time units (supplement Eq. 14).
/// <see cref="ChainOracle"/> runs the chain on this process; a pipelined implementation runs the nodes on MPI ranks,
/// and the optimizers cannot tell the difference.
/// </summary>
internal interface IGradientOracle
{
    /// <summary>d, the dimension of theta.</summary>
    int Dimension { get; }

    /// <summary>Delta, the depth of the computation graph.</summary>
    int Depth { get; }

    /// <summary>Time units spent in <see cref="Evaluate"/> since the oracle was made.</summary>
    long ElapsedTimeUnits { get; }

    /// <summary>
    /// values[k] = f(p_k) and gradients[k d .. (k+1) d) = a (sub)gradient of f at p_k, for the <paramref name="count"/>
    /// points p_k = points[k d .. (k+1) d), evaluated as <paramref name="count"/> micro-batches.
    /// </summary>
    void Evaluate(ReadOnlySpan<double> points, int count, Span<double> values, Span<double> gradients);

    /// <summary>
    /// f(theta) for the optimizers' records only: not part of any algorithm, so it costs no time units (a forward pass
    /// off the clock).
    /// </summary>
    double Monitor(ReadOnlySpan<double> theta);
}

/// <summary>
/// An <see cref="IGradientOracle"/> that runs a <see cref="Chain"/> node by node on this process and keeps the
/// paper's clock by counting: every node operation it performs is one time unit, scheduled as soon as its input is
/// ready and its node is free (nodes work in parallel, each on one operation at a time). Forward of micro-batch k on
/// node j waits for forward k on node j - 1; backward k on node j waits for backward k on node j + 1 (on the last
/// node, for its own forward k). Each node does the forwards of micro-batches 0 .. K-1, then their backwards (GPipe).
/// The makespan of those operations is what a call adds to <see cref="ElapsedTimeUnits"/>: 2 (K + Delta - 1), which
/// the tests check against <see cref="TimeUnits.PipelinedEvaluation"/> and the schedule simulator of the pipeline
/// code. Calls do not overlap: an optimizer updates theta between calls, so the pipeline drains each time.
/// </summary>
internal sealed class ChainOracle : IGradientOracle
{
    private readonly Chain chain;
    private readonly ChainSegment[] nodeSegments;
    private readonly List<SegmentTape[]> tapes = []; // tapes[k][j]: micro-batch k on node j
    private readonly double[][] activations; // node j's output for the current micro-batch
    private readonly long[] forwardOperations;
    private readonly long[] backwardOperations;

    public ChainOracle(Chain chain)
    {
        this.chain = chain;
        nodeSegments = Enumerable.Range(0, chain.Depth).Select(j => chain.Segment(new LayerRange(j, j + 1))).ToArray();
        activations = chain.Nodes.Select(n => new double[n.OutputDimension]).ToArray();
        forwardOperations = new long[chain.Depth];
        backwardOperations = new long[chain.Depth];
    }

    public Chain Chain => chain;

    public int Dimension => chain.InputDimension;

    public int Depth => chain.Depth;

    public long ElapsedTimeUnits { get; private set; }

    /// <summary>The number of <see cref="Evaluate"/> calls.</summary>
    public long Calls { get; private set; }

    /// <summary>The makespan of the last call, in time units.</summary>
    public long LastCallTimeUnits { get; private set; }

    /// <summary>Node forward operations performed by <see cref="Evaluate"/>, over all nodes (K Delta per call).</summary>
    public long ForwardOperations => forwardOperations.Sum();

    /// <summary>Node backward operations performed by <see cref="Evaluate"/>, over all nodes (K Delta per call).</summary>
    public long BackwardOperations => backwardOperations.Sum();

    /// <summary>Forward operations performed by node j.</summary>
    public long ForwardOperationsOf(int node) => forwardOperations[node];

    /// <summary>Backward operations performed by node j.</summary>
    public long BackwardOperationsOf(int node) => backwardOperations[node];

    public void Evaluate(ReadOnlySpan<double> points, int count, Span<double> values, Span<double> gradients)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var d = Dimension;
        var depth = Depth;
        if (points.Length != count * d || gradients.Length != count * d || values.Length != count)
        {
            throw new ArgumentException(
                $"{count} points of dimension {d} need {count * d} point values, {count} f values and {count * d} gradient values; got {points.Length}, {values.Length}, {gradients.Length}");
        }

        while (tapes.Count < count)
        {
            tapes.Add(nodeSegments.Select(s => s.NewTape()).ToArray());
        }

        // The clock: when each node is next free, and when each operation of this call ends.
        var nodeFree = new long[depth];
        var forwardEnd = new long[count, depth];
        var backwardEnd = new long[count, depth];
        long makespan = 0;

        // All forwards, micro-batch by micro-batch. Node j's input is node j - 1's output (theta itself for j = 0).
        for (var k = 0; k < count; k++)
        {
            for (var j = 0; j < depth; j++)
            {
                ReadOnlySpan<double> x = j == 0 ? points.Slice(k * d, d) : activations[j - 1];
                nodeSegments[j].Forward(x, activations[j], tapes[k][j]);
                forwardOperations[j]++;
                var ready = j == 0 ? 0 : forwardEnd[k, j - 1];
                forwardEnd[k, j] = Math.Max(nodeFree[j], ready) + 1;
                nodeFree[j] = forwardEnd[k, j];
            }

            values[k] = activations[depth - 1][0];
        }

        // All backwards, from df/df = 1 on the last node down to theta.
        ReadOnlySpan<double> one = [1.0];
        for (var k = 0; k < count; k++)
        {
            for (var j = depth - 1; j >= 0; j--)
            {
                ReadOnlySpan<double> gy = j == depth - 1 ? one : tapes[k][j + 1].Gradients[0];
                Span<double> gx = j == 0 ? gradients.Slice(k * d, d) : tapes[k][j].Gradients[0];
                nodeSegments[j].Backward(tapes[k][j], gy, gx);
                backwardOperations[j]++;
                var ready = j == depth - 1 ? forwardEnd[k, j] : backwardEnd[k, j + 1];
                backwardEnd[k, j] = Math.Max(nodeFree[j], ready) + 1;
                nodeFree[j] = backwardEnd[k, j];
                makespan = Math.Max(makespan, backwardEnd[k, j]);
            }
        }

        LastCallTimeUnits = makespan;
        ElapsedTimeUnits += makespan;
        Calls++;
    }

    public double Monitor(ReadOnlySpan<double> theta) => chain.Value(theta);
}
