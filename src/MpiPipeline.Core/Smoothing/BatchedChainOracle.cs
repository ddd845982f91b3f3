namespace MpiPipeline.Smoothing;

/// <summary>
/// A chain node that can also map M inputs in one call (the same function as <see cref="IChainNode.Forward"/> on each;
/// a torch node then makes one call of M x B samples instead of M calls of B).
/// </summary>
internal interface IBatchedChainNode : IChainNode
{
    /// <summary>ys[m] = node(xs[m]) for m = 0 .. count-1 (xs: count x InputDimension, ys: count x OutputDimension).</summary>
    void ForwardBatch(ReadOnlySpan<double> xs, int count, Span<double> ys);

    /// <summary>gxs[m] = J(xs[m])^T gys[m] for m = 0 .. count-1.</summary>
    void BackwardBatch(ReadOnlySpan<double> xs, ReadOnlySpan<double> gys, int count, Span<double> gxs);
}

/// <summary>
/// A one-process oracle that simulates the pipeline's clock without running its schedule: each node maps the K
/// points at once (<see cref="IBatchedChainNode"/>; nodes without it, one point after the other), forward through the
/// chain and then backward, and each call adds the paper's 2 (K + Delta - 1) time units (supplement Eq. 14) - what
/// the GPipe schedule of <see cref="ChainOracle"/> and <see cref="MpiChainOracle"/> takes, which the tests check.
/// The numbers are those of the micro-batch by micro-batch oracles up to float rounding in the batched torch calls
/// (a matrix product over M x B rows may round differently than over B). The point is speed: the Figure 3 experiment
/// on one process makes Delta torch calls per direction and iteration instead of K Delta. A finite sum of m distinct
/// terms makes m such passes (identical terms one), and a call adds 2 (K m + Delta - 1).
/// </summary>
internal sealed class BatchedChainOracle(IReadOnlyList<Chain> terms) : IGradientOracle
{
    private readonly Chain[] terms = FiniteSum.Check(terms);
    private readonly Chain chain = terms[0];
    private double[] termValues = [];
    private double[] termGradients = [];

    public BatchedChainOracle(Chain chain)
        : this([chain])
    {
    }

    private double[][] inputs = []; // inputs[j]: node j's K inputs
    private double[][] gradients = []; // gradients[j]: the gradient with respect to node j's K inputs
    private double[] top = [];
    private int capacity;

    public int Dimension => chain.InputDimension;

    public int Depth => chain.Depth;

    public int Terms => terms.Length;

    public long ElapsedTimeUnits { get; private set; }

    public void Evaluate(ReadOnlySpan<double> points, int count, Span<double> values, Span<double> gradientsOut)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var d = Dimension;
        if (points.Length != count * d || gradientsOut.Length != count * d || values.Length != count)
        {
            throw new ArgumentException(
                $"{count} points of dimension {d} need {count * d} point values, {count} f values and {count * d} gradient values; got {points.Length}, {values.Length}, {gradientsOut.Length}");
        }

        var distinct = terms.All(t => ReferenceEquals(t, chain)) ? 1 : terms.Length;
        if (distinct == 1)
        {
            Pass(chain, points, count, values, gradientsOut);
        }
        else
        {
            // Term i's K values and gradients, laid out as micro-batch b = k m + i like the other oracles, then averaged.
            var m = terms.Length;
            if (termValues.Length < count * m)
            {
                termValues = new double[count * m];
                termGradients = new double[count * m * d];
            }

            var v = new double[count];
            var g = new double[count * d];
            for (var i = 0; i < m; i++)
            {
                Pass(terms[i], points, count, v, g);
                for (var k = 0; k < count; k++)
                {
                    termValues[k * m + i] = v[k];
                    g.AsSpan(k * d, d).CopyTo(termGradients.AsSpan((k * m + i) * d, d));
                }
            }

            FiniteSum.Average(termValues, termGradients, count, m, d, values, gradientsOut);
        }

        ElapsedTimeUnits += TimeUnits.PipelinedEvaluation(count, Depth, Terms); // 2 (K m + Delta - 1)
    }

    public double Monitor(ReadOnlySpan<double> theta) => FiniteSum.Value(terms, theta);

    private void Pass(Chain chain, ReadOnlySpan<double> points, int count, Span<double> values, Span<double> gradientsOut)
    {
        Reserve(count);
        var nodes = chain.Nodes;
        points.CopyTo(inputs[0]);
        for (var j = 0; j < nodes.Count; j++) // forward, all K points per node
        {
            var x = inputs[j].AsSpan(0, count * nodes[j].InputDimension);
            var y = j + 1 < nodes.Count ? inputs[j + 1].AsSpan(0, count * nodes[j].OutputDimension) : values;
            Forward(nodes[j], x, count, y);
        }

        top.AsSpan(0, count).Fill(1.0); // df/df = 1
        for (var j = nodes.Count - 1; j >= 0; j--) // backward
        {
            ReadOnlySpan<double> gy = j + 1 < nodes.Count ? gradients[j + 1].AsSpan(0, count * nodes[j].OutputDimension) : top.AsSpan(0, count);
            var gx = j == 0 ? gradientsOut : gradients[j].AsSpan(0, count * nodes[j].InputDimension);
            Backward(nodes[j], inputs[j].AsSpan(0, count * nodes[j].InputDimension), gy, count, gx);
        }
    }

    private static void Forward(IChainNode node, ReadOnlySpan<double> xs, int count, Span<double> ys)
    {
        if (node is IBatchedChainNode batched)
        {
            batched.ForwardBatch(xs, count, ys);
            return;
        }

        for (var m = 0; m < count; m++)
        {
            node.Forward(xs.Slice(m * node.InputDimension, node.InputDimension), ys.Slice(m * node.OutputDimension, node.OutputDimension));
        }
    }

    private static void Backward(IChainNode node, ReadOnlySpan<double> xs, ReadOnlySpan<double> gys, int count, Span<double> gxs)
    {
        if (node is IBatchedChainNode batched)
        {
            batched.BackwardBatch(xs, gys, count, gxs);
            return;
        }

        for (var m = 0; m < count; m++)
        {
            node.Backward(xs.Slice(m * node.InputDimension, node.InputDimension), gys.Slice(m * node.OutputDimension, node.OutputDimension),
                gxs.Slice(m * node.InputDimension, node.InputDimension));
        }
    }

    private void Reserve(int count)
    {
        if (count <= capacity)
        {
            return;
        }

        inputs = chain.Nodes.Select(n => new double[count * n.InputDimension]).ToArray();
        gradients = chain.Nodes.Select(n => new double[count * n.InputDimension]).ToArray();
        top = new double[count];
        capacity = count;
    }
}
