using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>A scalar term h(theta) of theta in R^d, with its (sub)gradient: one of the two partial sums of a worst-case chain.</summary>
internal interface ILocalTerm
{
    double Value(ReadOnlySpan<double> theta);

    /// <summary>g += scale * grad h(theta) (a fixed subgradient where h has a kink).</summary>
    void AddGradient(ReadOnlySpan<double> theta, double scale, Span<double> g);
}

/// <summary>
/// The supplement's worst-case functions split along a chain i_1, ..., i_Delta (section 1): node i_1 maps
/// theta in R^d to (theta, h_1(theta)) in R^(d+1), the partial sum h_1 stored in coordinate d+1; nodes i_2 .. i_(Delta-1)
/// are identities; node i_Delta returns theta_(d+1) + h_2(theta). So f_G = h_1 + h_2, and the two halves of each
/// coupled sum sit at the two ends of the chain: revealing one more coordinate needs a trip through the chain
/// (the argument behind Eq. 3). With Delta = 1 the single node computes h_1 + h_2.
/// <para>
/// Subclasses give h_1 (<see cref="FirstNodeTerm"/>), h_2 (<see cref="LastNodeTerm"/>) and, written out apart from
/// them, the closed forms of f_G and its gradient (<see cref="Value"/>, <see cref="Gradient"/>) that the tests
/// compare the chain against. Indices: the paper's theta_1 .. theta_d are theta[0] .. theta[d-1] here.
/// </para>
/// </summary>
internal abstract class WorstCaseFunction
{
    protected WorstCaseFunction(int dimension)
    {
        if (dimension < 1)
        {
            throw new InputException($"dimension d = {dimension}: a worst-case function needs d >= 1");
        }

        Dimension = dimension;
    }

    /// <summary>d.</summary>
    public int Dimension { get; }

    /// <summary>h_1, the partial sum node i_1 stores in coordinate d+1.</summary>
    public abstract ILocalTerm FirstNodeTerm { get; }

    /// <summary>h_2, the rest, added on node i_Delta.</summary>
    public abstract ILocalTerm LastNodeTerm { get; }

    /// <summary>f_G(theta) from the closed form, not through the chain.</summary>
    public abstract double Value(ReadOnlySpan<double> theta);

    /// <summary>grad f_G(theta) (a subgradient where f_G has a kink) from the closed form, not through the chain.</summary>
    public abstract void Gradient(ReadOnlySpan<double> theta, Span<double> gradient);

    /// <summary>f_G as a chain of <paramref name="depth"/> = Delta nodes.</summary>
    public Chain ToChain(int depth)
    {
        if (depth < 1)
        {
            throw new InputException($"depth Delta = {depth}: a chain needs at least one node");
        }

        var d = Dimension;
        if (depth == 1)
        {
            return new Chain([new WholeFunctionNode(d, FirstNodeTerm, LastNodeTerm)]);
        }

        var nodes = new List<IChainNode>(depth) { new PartialSumNode(d, FirstNodeTerm) }; // i_1
        for (var j = 2; j < depth; j++)
        {
            nodes.Add(new IdentityNode(d + 1)); // i_2 .. i_(Delta-1)
        }

        nodes.Add(new FinalSumNode(d, LastNodeTerm)); // i_Delta
        return new Chain(nodes);
    }

    /// <summary>f_G as a chain of Delta nodes with the oracle that runs it.</summary>
    public ChainOracle ToOracle(int depth) => new(ToChain(depth));

    protected void CheckDimension(int length, string name)
    {
        if (length != Dimension)
        {
            throw new ArgumentException($"{name} has {length} coordinates; the function is defined on R^{Dimension}", name);
        }
    }
}

/// <summary>Node i_1: theta in R^d -> (theta, h_1(theta)) in R^(d+1).</summary>
internal sealed class PartialSumNode(int dimension, ILocalTerm term) : IChainNode
{
    public int InputDimension => dimension;

    public int OutputDimension => dimension + 1;

    public void Forward(ReadOnlySpan<double> x, Span<double> y)
    {
        x.CopyTo(y);
        y[dimension] = term.Value(x);
    }

    /// <summary>gx = gy[0..d) + gy[d] grad h_1(x).</summary>
    public void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> gy, Span<double> gx)
    {
        gy[..dimension].CopyTo(gx);
        term.AddGradient(x, gy[dimension], gx);
    }
}

/// <summary>Node i_Delta: (theta, s) in R^(d+1) -> s + h_2(theta).</summary>
internal sealed class FinalSumNode(int dimension, ILocalTerm term) : IChainNode
{
    public int InputDimension => dimension + 1;

    public int OutputDimension => 1;

    public void Forward(ReadOnlySpan<double> x, Span<double> y) => y[0] = x[dimension] + term.Value(x[..dimension]);

    /// <summary>gx = (gy grad h_2(theta), gy).</summary>
    public void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> gy, Span<double> gx)
    {
        gx.Clear();
        term.AddGradient(x[..dimension], gy[0], gx[..dimension]);
        gx[dimension] = gy[0];
    }
}

/// <summary>The chain of depth Delta = 1: one node computing h_1(theta) + h_2(theta).</summary>
internal sealed class WholeFunctionNode(int dimension, ILocalTerm first, ILocalTerm last) : IChainNode
{
    public int InputDimension => dimension;

    public int OutputDimension => 1;

    public void Forward(ReadOnlySpan<double> x, Span<double> y) => y[0] = first.Value(x) + last.Value(x);

    public void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> gy, Span<double> gx)
    {
        gx.Clear();
        first.AddGradient(x, gy[0], gx);
        last.AddGradient(x, gy[0], gx);
    }
}
