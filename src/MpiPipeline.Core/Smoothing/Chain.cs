using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;

namespace MpiPipeline.Smoothing;

/// <summary>
/// A chain computation graph f = node_Delta o ... o node_1 : R^d -> R, the depth Delta being the number of nodes.
/// Consecutive nodes agree on dimensions and the last one outputs a scalar. A pipeline cuts the chain into contiguous
/// <see cref="ChainSegment"/>s (by <see cref="Partition.ByBalance"/>, several virtual stages per rank if wanted);
/// <see cref="ValueAndGradient"/> runs the whole chain on one process for reference.
/// </summary>
internal sealed class Chain
{
    private readonly IChainNode[] nodes;

    public Chain(IReadOnlyList<IChainNode> nodes)
    {
        if (nodes.Count == 0)
        {
            throw new InputException("a chain needs at least one node (depth Delta >= 1)");
        }

        for (var j = 1; j < nodes.Count; j++)
        {
            if (nodes[j].InputDimension != nodes[j - 1].OutputDimension)
            {
                throw new InputException(
                    $"node {j - 1} outputs {nodes[j - 1].OutputDimension} values but node {j} takes {nodes[j].InputDimension}: consecutive nodes must agree");
            }
        }

        if (nodes[^1].OutputDimension != 1)
        {
            throw new InputException($"the last node outputs {nodes[^1].OutputDimension} values; a chain computes a scalar f(theta)");
        }

        this.nodes = nodes.ToArray();
    }

    public IReadOnlyList<IChainNode> Nodes => nodes;

    /// <summary>Delta, the number of nodes.</summary>
    public int Depth => nodes.Length;

    /// <summary>d, the dimension of theta.</summary>
    public int InputDimension => nodes[0].InputDimension;

    /// <summary>The nodes [range.Start, range.End) as one piece that a rank runs.</summary>
    public ChainSegment Segment(LayerRange range)
    {
        if (range.Start < 0 || range.End > nodes.Length || range.Count < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(range), range, $"a segment of a chain of {nodes.Length} nodes must be a non-empty part of [0, {nodes.Length})");
        }

        return new ChainSegment(nodes, range);
    }

    /// <summary>The segments of a partition, e.g. <c>chain.Segments(Partition.ByBalance(chain.Depth, balance))</c>.</summary>
    public IReadOnlyList<ChainSegment> Segments(IEnumerable<LayerRange> ranges) => ranges.Select(Segment).ToArray();

    /// <summary>f(theta), forward through every node.</summary>
    public double Value(ReadOnlySpan<double> theta)
    {
        var whole = Segment(new LayerRange(0, nodes.Length));
        Span<double> y = stackalloc double[1];
        whole.Forward(theta, y, whole.NewTape());
        return y[0];
    }

    /// <summary>f(theta) and its (sub)gradient: forward through every node, then backward from df/df = 1.</summary>
    public double ValueAndGradient(ReadOnlySpan<double> theta, Span<double> gradient)
    {
        var whole = Segment(new LayerRange(0, nodes.Length));
        var tape = whole.NewTape();
        Span<double> y = stackalloc double[1];
        whole.Forward(theta, y, tape);
        ReadOnlySpan<double> one = [1.0];
        whole.Backward(tape, one, gradient);
        return y[0];
    }
}

/// <summary>
/// The nodes [Range.Start, Range.End) of a chain: what one (virtual) pipeline stage runs. <see cref="Forward"/> keeps
/// each node's input in a <see cref="SegmentTape"/>, one tape per micro-batch in flight, and <see cref="Backward"/>
/// reads it back. The vectors passed between segments are plain spans, ready to send between ranks.
/// </summary>
internal sealed class ChainSegment
{
    private readonly IChainNode[] nodes;

    internal ChainSegment(IChainNode[] nodes, LayerRange range)
    {
        this.nodes = nodes;
        Range = range;
    }

    public LayerRange Range { get; }

    public int InputDimension => nodes[Range.Start].InputDimension;

    public int OutputDimension => nodes[Range.End - 1].OutputDimension;

    /// <summary>Buffers for one micro-batch: the input of every node of this segment and room for its gradient.</summary>
    public SegmentTape NewTape()
    {
        var inputs = new double[Range.Count][];
        var gradients = new double[Range.Count][];
        for (var j = 0; j < Range.Count; j++)
        {
            inputs[j] = new double[nodes[Range.Start + j].InputDimension];
            gradients[j] = new double[nodes[Range.Start + j].InputDimension];
        }

        return new SegmentTape(inputs, gradients);
    }

    /// <summary>Forward through the segment's nodes (Range.Count time units), keeping their inputs in <paramref name="tape"/>.</summary>
    public void Forward(ReadOnlySpan<double> input, Span<double> output, SegmentTape tape)
    {
        CheckLength(input.Length, InputDimension, nameof(input));
        CheckLength(output.Length, OutputDimension, nameof(output));
        for (var j = Range.Start; j < Range.End; j++)
        {
            var x = tape.Inputs[j - Range.Start];
            if (j == Range.Start)
            {
                input.CopyTo(x);
            }

            if (j + 1 < Range.End)
            {
                nodes[j].Forward(x, tape.Inputs[j + 1 - Range.Start]);
            }
            else
            {
                nodes[j].Forward(x, output);
            }
        }
    }

    /// <summary>Backward through the segment's nodes in reverse (Range.Count time units), from the output gradient.</summary>
    public void Backward(SegmentTape tape, ReadOnlySpan<double> outputGradient, Span<double> inputGradient)
    {
        CheckLength(outputGradient.Length, OutputDimension, nameof(outputGradient));
        CheckLength(inputGradient.Length, InputDimension, nameof(inputGradient));
        var gy = outputGradient;
        for (var j = Range.End - 1; j >= Range.Start; j--)
        {
            Span<double> gx = j == Range.Start ? inputGradient : tape.Gradients[j - Range.Start];
            nodes[j].Backward(tape.Inputs[j - Range.Start], gy, gx);
            gy = gx;
        }
    }

    private static void CheckLength(int actual, int expected, string name)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{name} has {actual} values; the segment expects {expected}", name);
        }
    }
}

/// <summary>
/// One micro-batch's buffers of a segment: each node's input (written by Forward, read by Backward) and the gradient
/// with respect to it (scratch for Backward). Reusable once the micro-batch's backward is done.
/// </summary>
internal sealed class SegmentTape(double[][] inputs, double[][] gradients)
{
    public double[][] Inputs { get; } = inputs;

    public double[][] Gradients { get; } = gradients;
}
