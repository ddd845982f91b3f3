using MpiPipeline.Pipeline;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The first-order oracle the optimizers call: f and a (sub)gradient at K points at once, the K points pushed through
/// the computation graph as K m micro-batches (m the terms of a finite sum, <see cref="TimeUnits"/>). One call costs
/// 2 (K m + Delta - 1) time units (supplement Eq. 14 for m = 1).
/// <see cref="ChainOracle"/> runs the chain on this process; a pipelined implementation runs the nodes on MPI ranks,
/// and the optimizers cannot tell the difference.
/// </summary>
internal interface IGradientOracle
{
    /// <summary>d, the dimension of theta.</summary>
    int Dimension { get; }

    /// <summary>Delta, the depth of the computation graph.</summary>
    int Depth { get; }

    /// <summary>m, the terms of the finite sum f = (1/m) sum_i f_i: one evaluation at one point is m micro-batches.</summary>
    int Terms { get; }

    /// <summary>Time units spent in <see cref="Evaluate"/> since the oracle was made.</summary>
    long ElapsedTimeUnits { get; }

    /// <summary>
    /// values[k] = f(p_k) and gradients[k d .. (k+1) d) = a (sub)gradient of f at p_k, for the <paramref name="count"/>
    /// points p_k = points[k d .. (k+1) d), evaluated as <paramref name="count"/> x m micro-batches (f and its gradient
    /// the mean over the m terms).
    /// </summary>
    void Evaluate(ReadOnlySpan<double> points, int count, Span<double> values, Span<double> gradients);

    /// <summary>
    /// f(theta) for the optimizers' records only: not part of any algorithm, so it costs no time units (a forward pass
    /// off the clock).
    /// </summary>
    double Monitor(ReadOnlySpan<double> theta);
}

/// <summary>
/// The order in which one call's micro-batches run through the chain.
/// </summary>
internal enum ChainSchedule
{
    /// <summary>GPipe: every node does the forwards of all micro-batches, then their backwards; 2 (K m + Delta - 1) time units.</summary>
    Pipelined,

    /// <summary>No pipelining: micro-batch b's forward and backward through the whole chain before b + 1 enters; 2 K m Delta.</summary>
    OneAtATime,
}

/// <summary>
/// An <see cref="IGradientOracle"/> that runs a <see cref="Chain"/> (one per term of a finite sum) node by node on
/// this process and keeps the paper's clock by counting: every node operation it performs is one time unit,
/// scheduled as soon as its input is ready and its node is free (nodes work in parallel, each on one operation at a
/// time). Forward of micro-batch b on node j waits for forward b on node j - 1; backward b on node j waits for backward
/// b on node j + 1 (on the last node, for its own forward b). Micro-batch b = k m + i is point k on term i. In the
/// <see cref="ChainSchedule.Pipelined"/> order each node does the forwards of every micro-batch, then their backwards
/// (GPipe): the makespan a call adds to <see cref="ElapsedTimeUnits"/> is then 2 (K m + Delta - 1), which the tests
/// check against <see cref="TimeUnits.PipelinedEvaluation"/> and the schedule simulator of the pipeline code. Calls
/// do not overlap: an optimizer updates theta between calls, so the pipeline drains each time.
/// </summary>
internal sealed class ChainOracle : IGradientOracle
{
    private readonly Chain[] terms;
    private readonly ChainSegment[][] nodeSegments; // [term][node]
    private readonly List<SegmentTape[]> tapes = []; // tapes[b][j]: micro-batch b on node j
    private readonly double[][] activations; // node j's output for the current micro-batch
    private readonly long[] forwardOperations;
    private readonly long[] backwardOperations;
    private readonly ChainSchedule schedule;
    private double[] termValues = [];
    private double[] termGradients = [];

    /// <param name="chain">f as a chain.</param>
    /// <param name="terms">m: f is evaluated as the mean of m identical terms (m micro-batches per point, the clock of a finite sum).</param>
    public ChainOracle(Chain chain, int terms = 1, ChainSchedule schedule = ChainSchedule.Pipelined)
        : this(Enumerable.Repeat(chain, CheckTerms(terms)).ToArray(), schedule)
    {
    }

    /// <param name="terms">f_1 .. f_m, chains of the same depth and shapes: f = (1/m) sum_i f_i.</param>
    public ChainOracle(IReadOnlyList<Chain> terms, ChainSchedule schedule = ChainSchedule.Pipelined)
    {
        this.terms = FiniteSum.Check(terms);
        this.schedule = schedule;
        var chain = terms[0];
        nodeSegments = this.terms.Select(c => Enumerable.Range(0, c.Depth).Select(j => c.Segment(new LayerRange(j, j + 1))).ToArray()).ToArray();
        activations = chain.Nodes.Select(n => new double[n.OutputDimension]).ToArray();
        forwardOperations = new long[chain.Depth];
        backwardOperations = new long[chain.Depth];
    }

    public Chain Chain => terms[0];

    public int Dimension => terms[0].InputDimension;

    public int Depth => terms[0].Depth;

    public int Terms => terms.Length;

    public long ElapsedTimeUnits { get; private set; }

    /// <summary>The number of <see cref="Evaluate"/> calls.</summary>
    public long Calls { get; private set; }

    /// <summary>The makespan of the last call, in time units.</summary>
    public long LastCallTimeUnits { get; private set; }

    /// <summary>Node forward operations performed by <see cref="Evaluate"/>, over all nodes (K m Delta per call).</summary>
    public long ForwardOperations => forwardOperations.Sum();

    /// <summary>Node backward operations performed by <see cref="Evaluate"/>, over all nodes (K m Delta per call).</summary>
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
        var m = Terms;
        if (points.Length != count * d || gradients.Length != count * d || values.Length != count)
        {
            throw new ArgumentException(
                $"{count} points of dimension {d} need {count * d} point values, {count} f values and {count * d} gradient values; got {points.Length}, {values.Length}, {gradients.Length}");
        }

        var batches = count * m;
        while (tapes.Count < batches)
        {
            tapes.Add(nodeSegments[0].Select(s => s.NewTape()).ToArray());
        }

        if (termValues.Length < batches)
        {
            termValues = new double[batches];
            termGradients = new double[batches * d];
        }

        // The clock: when each node is next free, and when each operation of this call ends.
        var clock = new Clock(new long[depth], new long[batches, depth], new long[batches, depth]);
        if (schedule == ChainSchedule.Pipelined)
        {
            for (var b = 0; b < batches; b++)
            {
                Forward(b, points, clock);
            }

            for (var b = 0; b < batches; b++)
            {
                Backward(b, clock);
            }
        }
        else
        {
            for (var b = 0; b < batches; b++)
            {
                Forward(b, points, clock);
                Backward(b, clock);
            }
        }

        var makespan = clock.Makespan;

        FiniteSum.Average(termValues, termGradients, count, m, d, values, gradients);
        LastCallTimeUnits = makespan;
        ElapsedTimeUnits += makespan;
        Calls++;
    }

    public double Monitor(ReadOnlySpan<double> theta) => FiniteSum.Value(terms, theta);

    private static int CheckTerms(int terms) => terms >= 1 ? terms : throw new InputException($"a finite sum needs m >= 1 terms, not {terms}");

    /// <summary>Micro-batch b = k m + i: point k through term i. Node j's input is node j - 1's output (the point for j = 0).</summary>
    private void Forward(int b, ReadOnlySpan<double> points, Clock clock)
    {
        var (d, depth, m) = (Dimension, Depth, Terms);
        var (nodeFree, forwardEnd) = (clock.NodeFree, clock.ForwardEnd);
        {
            var (k, i) = (b / m, b % m);
            for (var j = 0; j < depth; j++)
            {
                ReadOnlySpan<double> x = j == 0 ? points.Slice(k * d, d) : activations[j - 1];
                nodeSegments[i][j].Forward(x, activations[j], tapes[b][j]);
                forwardOperations[j]++;
                var ready = j == 0 ? 0 : forwardEnd[b, j - 1];
                forwardEnd[b, j] = Math.Max(nodeFree[j], ready) + 1;
                nodeFree[j] = forwardEnd[b, j];
            }

            termValues[b] = activations[depth - 1][0];
        }

    }

    /// <summary>Micro-batch b from df/df = 1 on the last node down to the point.</summary>
    private void Backward(int b, Clock clock)
    {
        var (d, depth, m) = (Dimension, Depth, Terms);
        var (nodeFree, forwardEnd, backwardEnd) = (clock.NodeFree, clock.ForwardEnd, clock.BackwardEnd);
        {
            ReadOnlySpan<double> one = [1.0];
            var i = b % m;
            for (var j = depth - 1; j >= 0; j--)
            {
                ReadOnlySpan<double> gy = j == depth - 1 ? one : tapes[b][j + 1].Gradients[0];
                Span<double> gx = j == 0 ? termGradients.AsSpan(b * d, d) : tapes[b][j].Gradients[0];
                nodeSegments[i][j].Backward(tapes[b][j], gy, gx);
                backwardOperations[j]++;
                var ready = j == depth - 1 ? forwardEnd[b, j] : backwardEnd[b, j + 1];
                backwardEnd[b, j] = Math.Max(nodeFree[j], ready) + 1;
                nodeFree[j] = backwardEnd[b, j];
                clock.Makespan = Math.Max(clock.Makespan, backwardEnd[b, j]);
            }
        }
    }

    /// <summary>One call's clock: when each node is next free and when each operation ended.</summary>
    private sealed class Clock(long[] nodeFree, long[,] forwardEnd, long[,] backwardEnd)
    {
        public long[] NodeFree { get; } = nodeFree;

        public long[,] ForwardEnd { get; } = forwardEnd;

        public long[,] BackwardEnd { get; } = backwardEnd;

        public long Makespan { get; set; }
    }
}

/// <summary>The finite sum f = (1/m) sum_i f_i over chains: checks and the mean of the m terms, shared by the oracles.</summary>
internal static class FiniteSum
{
    public static Chain[] Check(IReadOnlyList<Chain> terms)
    {
        if (terms.Count < 1)
        {
            throw new InputException("a finite sum needs m >= 1 terms");
        }

        var first = terms[0];
        foreach (var c in terms)
        {
            if (c.Depth != first.Depth || c.InputDimension != first.InputDimension
                || !c.Nodes.Select(n => n.OutputDimension).SequenceEqual(first.Nodes.Select(n => n.OutputDimension)))
            {
                throw new InputException("the terms of a finite sum must be chains of the same depth and node shapes");
            }
        }

        return terms.ToArray();
    }

    /// <summary>values[k] = (1/m) sum_i termValues[k m + i], and the same for the gradients (the same order everywhere).</summary>
    public static void Average(ReadOnlySpan<double> termValues, ReadOnlySpan<double> termGradients, int count, int m, int d,
        Span<double> values, Span<double> gradients)
    {
        for (var k = 0; k < count; k++)
        {
            var g = gradients.Slice(k * d, d);
            termGradients.Slice(k * m * d, d).CopyTo(g);
            var v = termValues[k * m];
            for (var i = 1; i < m; i++)
            {
                v += termValues[k * m + i];
                var gi = termGradients.Slice((k * m + i) * d, d);
                for (var c = 0; c < d; c++)
                {
                    g[c] += gi[c];
                }
            }

            if (m > 1)
            {
                v /= m;
                for (var c = 0; c < d; c++)
                {
                    g[c] /= m;
                }
            }

            values[k] = v;
        }
    }

    /// <summary>gradient = (1/m) sum_i grad f_i(theta), one process (identical terms computed once).</summary>
    public static void Gradient(IReadOnlyList<Chain> terms, ReadOnlySpan<double> theta, Span<double> gradient)
    {
        terms[0].ValueAndGradient(theta, gradient);
        if (terms.All(t => ReferenceEquals(t, terms[0])))
        {
            return;
        }

        var gi = new double[gradient.Length];
        for (var i = 1; i < terms.Count; i++)
        {
            terms[i].ValueAndGradient(theta, gi);
            for (var c = 0; c < gi.Length; c++)
            {
                gradient[c] += gi[c];
            }
        }

        for (var c = 0; c < gradient.Length; c++)
        {
            gradient[c] /= terms.Count;
        }
    }

    /// <summary>f(theta) = (1/m) sum_i f_i(theta), forward through each term (identical terms computed once).</summary>
    public static double Value(IReadOnlyList<Chain> terms, ReadOnlySpan<double> theta)
    {
        if (terms.All(t => ReferenceEquals(t, terms[0])))
        {
            return terms[0].Value(theta);
        }

        var sum = 0.0;
        foreach (var t in terms)
        {
            sum += t.Value(theta);
        }

        return sum / terms.Count;
    }
}
