namespace MpiPipeline.Smoothing;

/// <summary>
/// One node of a chain computation graph f = node_Delta o ... o node_1 (the paper's chain i_1, ..., i_Delta): a map
/// R^InputDimension -> R^OutputDimension with its vector-Jacobian product. In the paper's time model one
/// <see cref="Forward"/> or one <see cref="Backward"/> of one node takes one time unit.
/// <para>
/// Nodes hold no per-call state: <see cref="Backward"/> gets the node's input again, so one node object can serve
/// several micro-batches in flight (the pipeline executor keeps each micro-batch's inputs, see
/// <see cref="ChainSegment"/>), and a rank that runs the nodes of a contiguous range only exchanges plain vectors
/// with its neighbours.
/// </para>
/// </summary>
internal interface IChainNode
{
    int InputDimension { get; }

    int OutputDimension { get; }

    /// <summary>y = node(x).</summary>
    void Forward(ReadOnlySpan<double> x, Span<double> y);

    /// <summary>
    /// gx = J(x)^T gy, the gradient with respect to the input given the gradient <paramref name="gy"/> with respect to
    /// the output (overwrites <paramref name="gx"/>). Where the node is not differentiable it returns the product with
    /// one fixed element of the subdifferential (each node documents its choice).
    /// </summary>
    void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> gy, Span<double> gx);
}

/// <summary>The identity R^n -> R^n: the nodes i_2 .. i_(Delta-1) of the worst-case chains, which only pass theta on.</summary>
internal sealed class IdentityNode : IChainNode
{
    public IdentityNode(int dimension)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        InputDimension = dimension;
    }

    public int InputDimension { get; }

    public int OutputDimension => InputDimension;

    public void Forward(ReadOnlySpan<double> x, Span<double> y) => x.CopyTo(y);

    public void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> gy, Span<double> gx) => gy.CopyTo(gx);
}
