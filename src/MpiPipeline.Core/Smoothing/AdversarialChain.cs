using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Torch;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The paper's experiment (poster Figure 3): adversarial example creation on a trained classifier, as a chain of
/// Delta nodes. The optimized variable theta = delta in R^d (d = 784 pixels, in the normalized pixel space of the
/// data) is one perturbation shared by B images x_i with labels y_i (a universal perturbation), and
/// <code>
/// f(delta) = (1/B) sum_i max(z_(y_i)(x_i + delta) - max_(j != y_i) z_j(x_i + delta), -kappa) + (lambda/2) ||delta||^2
/// </code>
/// with z(x) the network's logits: the margin of the true class, clipped at -kappa once the image is misclassified
/// by kappa (Carlini-Wagner's margin loss), plus a penalty that keeps the perturbation small. A ReLU network and the
/// max make f non-smooth (and non-convex): the setting of the poster's Figure 3, which compares PPRS with GD and AGD
/// and whose caption claims only that more samples make PPRS more stable and let it converge faster (whether it
/// beats AGD here: bench/results/pprs.md).
/// <para>
/// The chain follows the construction of the supplement's worst-case functions: node i_1 maps delta to the first
/// layers' activations of the B images x_i + delta, and stores the penalty (lambda/2) ||delta||^2 in one extra
/// coordinate; the middle nodes run their layers on the B activations and pass that coordinate on; node i_Delta runs
/// the last layers, takes the margin loss and adds the stored penalty. Node j runs a torch <see cref="Stage"/> built
/// from its slice of the model's layer list, with its slice of the trained flat parameters (a Stage has them in
/// layer order, so the slices of consecutive nodes are consecutive in the file the <c>train</c> verb writes).
/// </para>
/// </summary>
internal sealed class AdversarialChain : IDisposable
{
    private readonly TorchChainNode[] nodes;

    private AdversarialChain(TorchChainNode[] nodes, IReadOnlyList<LayerRange> layerGroups, int units)
    {
        this.nodes = nodes;
        Chain = new Chain(nodes);
        LayerGroups = layerGroups;
        Units = units;
    }

    /// <summary>The chain of Delta torch-backed nodes computing f.</summary>
    public Chain Chain { get; }

    /// <summary>The layer indices (into the model's layer list) of each node.</summary>
    public IReadOnlyList<LayerRange> LayerGroups { get; }

    /// <summary>The parametric layers (linear, conv2d, residual blocks) of the model: Delta is at most this.</summary>
    public int Units { get; }

    /// <summary>
    /// The model's layers cut into <paramref name="depth"/> = Delta nodes. The list is first cut into units, each
    /// ending at a parametric layer (linear, conv2d or a residual block) with the parameter-free layers before it
    /// (flatten, relu, ...): deep-mlp:N and res-mlp:N have N units. The units are then spread evenly over the Delta
    /// nodes (Delta = N: one unit per node; fewer nodes wrap groups of units).
    /// </summary>
    public static IReadOnlyList<LayerRange> CutIntoNodes(IReadOnlyList<LayerSpec> layers, int depth, string modelName)
    {
        var ends = new List<int>();
        for (var i = 0; i < layers.Count; i++)
        {
            if (layers[i].Kind is "linear" or "conv2d" or "residual")
            {
                ends.Add(i + 1);
            }
        }

        if (ends.Count == 0)
        {
            throw new InputException($"model '{modelName}' has no parametric layer to cut into chain nodes");
        }

        ends[^1] = layers.Count; // trailing parameter-free layers ride with the last unit
        if (depth < 1 || depth > ends.Count)
        {
            throw new InputException(
                $"--delta {depth}: model '{modelName}' has {ends.Count} parametric layers, so it can be cut into 1 to {ends.Count} chain nodes");
        }

        var groups = MpiChainOracle.EvenRanges(ends.Count, depth); // units per node
        return groups.Select(g => new LayerRange(g.Start == 0 ? 0 : ends[g.Start - 1], ends[g.End - 1])).ToArray();
    }

    /// <summary>
    /// The chain for the model <paramref name="layers"/> (sample shape <paramref name="sampleShape"/>, e.g. [1, 28, 28]),
    /// cut into Delta nodes, with the flat trained <paramref name="parameters"/> (null: libtorch's initialization from
    /// <paramref name="seed"/>, node j seeded with seed + j), attacking the B images of <paramref name="images"/>
    /// (B x d floats, normalized) with labels <paramref name="labels"/>.
    /// </summary>
    public static AdversarialChain Create(IReadOnlyList<LayerSpec> layers, ReadOnlySpan<int> sampleShape, int depth, string modelName,
        ReadOnlySpan<float> parameters, bool hasParameters, float[] images, int[] labels, double kappa, double penalty, long seed)
    {
        if (!(kappa >= 0) || !double.IsFinite(kappa) || !(penalty >= 0) || !double.IsFinite(penalty))
        {
            throw new InputException($"the adversarial objective needs kappa >= 0 and lambda >= 0, finite; got kappa = {kappa}, lambda = {penalty}");
        }

        var groups = CutIntoNodes(layers, depth, modelName);
        var shape = sampleShape.ToArray();
        var batch = labels.Length;
        var nodes = new TorchChainNode[groups.Count];
        var offset = 0L;
        try
        {
            for (var j = 0; j < groups.Count; j++)
            {
                var slice = layers.Skip(groups[j].Start).Take(groups[j].Count).ToArray();
                var stage = Stage.Create(slice, shape, "cpu", seed + j);
                stage.Training = false; // eval mode: per-sample functions (batchnorm's running statistics, no dropout)
                if (hasParameters)
                {
                    if (offset + stage.ParameterCount > parameters.Length)
                    {
                        stage.Dispose();
                        throw new InputException(
                            $"the parameter file holds {parameters.Length} values, fewer than model '{modelName}' needs (node {j} ends at {offset + stage.ParameterCount}): was it trained with this --model?");
                    }

                    parameters.Slice((int)offset, (int)stage.ParameterCount).CopyTo(stage.Parameters);
                    stage.PushParameters();
                    offset += stage.ParameterCount;
                }

                nodes[j] = new TorchChainNode(stage, batch, j == 0 ? images : null, j == groups.Count - 1 ? labels : null, kappa, penalty);
                shape = stage.SampleOutputShape;
            }

            if (hasParameters && offset != parameters.Length)
            {
                throw new InputException(
                    $"the parameter file holds {parameters.Length} values but model '{modelName}' has {offset}: was it trained with this --model?");
            }

            if (shape.Length != 1 || shape[0] < 2)
            {
                throw new InputException($"model '{modelName}' outputs samples of shape [{string.Join(", ", shape)}]; the margin loss needs a vector of at least 2 logits");
            }

            return new AdversarialChain(nodes, groups, CountUnits(layers));
        }
        catch
        {
            foreach (var node in nodes)
            {
                node?.Dispose();
            }

            throw;
        }
    }

    public void Dispose()
    {
        foreach (var node in nodes)
        {
            node.Dispose();
        }
    }

    private static int CountUnits(IReadOnlyList<LayerSpec> layers) => layers.Count(l => l.Kind is "linear" or "conv2d" or "residual");
}

/// <summary>
/// One node of <see cref="AdversarialChain"/>: a torch <see cref="Stage"/> (a slice of the classifier) applied to the B
/// images' activations, in float32, with doubles at its boundary. Vectors between nodes are the B activations
/// (B x n) followed by the stored penalty. The first node takes delta instead and forms the inputs x_i + delta; the
/// last one outputs the scalar f. A node is both (Delta = 1) when the chain has one node.
/// <para>
/// The forward runs <see cref="Stage.Infer"/> (no graph). The backward - the vector-Jacobian product J(x)^T gy - runs
/// the stage's forward again with a graph (<see cref="Stage.Forward"/> with requireInputGradient in slot 0, freed
/// at once by <see cref="Stage.Backward"/>): re-materialization, as GPipe does, so that a node holds no per-micro-batch
/// state and serves any number of micro-batches in flight (<see cref="IChainNode"/>'s contract). The paper's clock still
/// counts one time unit per node backward. Parameter gradients, which the bridge accumulates on every backward, are
/// never used and are zeroed now and then.
/// </para>
/// <para>
/// As an <see cref="IBatchedChainNode"/> it also maps M inputs at once (M x B samples in one torch call): the same
/// function, for the one-process <see cref="BatchedChainOracle"/> that simulates the pipeline's clock quickly.
/// </para>
/// </summary>
internal sealed class TorchChainNode : IBatchedChainNode, IDisposable
{
    private const int Slot = 0;
    private const int ZeroGradientsEvery = 256;

    private readonly Stage stage;
    private readonly int batch;
    private readonly float[]? images; // first node: the B images x_i, B x d
    private readonly int[]? labels; // last node: y_i
    private readonly double kappa;
    private readonly double penalty; // lambda
    private readonly int inSize; // per sample
    private readonly int outSize;
    private float[] input = [];
    private float[] output = [];
    private float[] outputGradient = [];
    private float[] inputGradient = [];
    private double[] carried = [];
    private int backwardsSinceZero;

    public TorchChainNode(Stage stage, int batch, float[]? images, int[]? labels, double kappa, double penalty)
    {
        this.stage = stage;
        this.batch = batch;
        this.images = images;
        this.labels = labels;
        this.kappa = kappa;
        this.penalty = penalty;
        inSize = stage.SampleInputSize;
        outSize = stage.SampleOutputSize;
        if (batch < 1)
        {
            throw new InputException("the adversarial objective needs at least one image");
        }

        if (images is not null && images.Length != batch * inSize)
        {
            throw new ArgumentException($"{images.Length} image values for {batch} images of {inSize} values", nameof(images));
        }

        if (labels is not null)
        {
            foreach (var label in labels)
            {
                if (label < 0 || label >= outSize)
                {
                    throw new InputException($"label {label} is not one of the model's {outSize} classes");
                }
            }
        }

        InputDimension = IsFirst ? inSize : batch * inSize + 1;
        OutputDimension = IsLast ? 1 : batch * outSize + 1;
        Reserve(1);
    }

    public bool IsFirst => images is not null;

    public bool IsLast => labels is not null;

    public int InputDimension { get; }

    public int OutputDimension { get; }

    public Stage Stage => stage;

    public void Forward(ReadOnlySpan<double> x, Span<double> y) => ForwardBatch(x, 1, y);

    public void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> gy, Span<double> gx) => BackwardBatch(x, gy, 1, gx);

    public void ForwardBatch(ReadOnlySpan<double> xs, int count, Span<double> ys)
    {
        Reserve(count);
        LoadInput(xs, count);
        var rows = count * batch;
        stage.Infer(input.AsSpan(0, rows * inSize), rows, output.AsSpan(0, rows * outSize));
        for (var m = 0; m < count; m++)
        {
            var y = ys.Slice(m * OutputDimension, OutputDimension);
            var z = output.AsSpan(m * batch * outSize, batch * outSize);
            if (IsLast)
            {
                y[0] = Margin(z, Span<float>.Empty) + carried[m];
            }
            else
            {
                for (var i = 0; i < z.Length; i++)
                {
                    y[i] = z[i];
                }

                y[^1] = carried[m];
            }
        }
    }

    public void BackwardBatch(ReadOnlySpan<double> xs, ReadOnlySpan<double> gys, int count, Span<double> gxs)
    {
        Reserve(count);
        LoadInput(xs, count);
        var rows = count * batch;
        stage.Forward(Slot, input.AsSpan(0, rows * inSize), rows, output.AsSpan(0, rows * outSize), requireInputGradient: true); // re-materialize
        for (var m = 0; m < count; m++)
        {
            var gy = gys.Slice(m * OutputDimension, OutputDimension);
            var gz = outputGradient.AsSpan(m * batch * outSize, batch * outSize);
            if (IsLast)
            {
                Margin(output.AsSpan(m * batch * outSize, batch * outSize), gz); // d margin / dz, then times gy
                for (var i = 0; i < gz.Length; i++)
                {
                    gz[i] = (float)(gz[i] * gy[0]);
                }
            }
            else
            {
                for (var i = 0; i < gz.Length; i++)
                {
                    gz[i] = (float)gy[i];
                }
            }
        }

        stage.Backward(Slot, outputGradient.AsSpan(0, rows * outSize), inputGradient.AsSpan(0, rows * inSize));
        if (++backwardsSinceZero >= ZeroGradientsEvery)
        {
            stage.ZeroGradients();
            backwardsSinceZero = 0;
        }

        for (var m = 0; m < count; m++)
        {
            var gy = gys.Slice(m * OutputDimension, OutputDimension);
            var carriedGradient = IsLast ? gy[0] : gy[^1];
            var gx = gxs.Slice(m * InputDimension, InputDimension);
            var gin = inputGradient.AsSpan(m * batch * inSize, batch * inSize);
            if (IsFirst)
            {
                // delta is shared by the B images: d f/d delta = sum_i d f/d x_i, plus the penalty's lambda delta.
                var x = xs.Slice(m * InputDimension, InputDimension);
                for (var p = 0; p < inSize; p++)
                {
                    var sum = 0.0;
                    for (var i = 0; i < batch; i++)
                    {
                        sum += gin[i * inSize + p];
                    }

                    gx[p] = sum + carriedGradient * penalty * x[p];
                }
            }
            else
            {
                for (var i = 0; i < gin.Length; i++)
                {
                    gx[i] = gin[i];
                }

                gx[^1] = carriedGradient;
            }
        }
    }

    public void Dispose() => stage.Dispose();

    private void Reserve(int count)
    {
        if (carried.Length >= count)
        {
            return;
        }

        input = new float[count * batch * inSize];
        inputGradient = new float[input.Length];
        output = new float[count * batch * outSize];
        outputGradient = new float[output.Length];
        carried = new double[count];
    }

    /// <summary>Fills the stage's input from the <paramref name="count"/> vectors in xs and <see cref="carried"/> with their penalties (the first node computes them).</summary>
    private void LoadInput(ReadOnlySpan<double> xs, int count)
    {
        for (var m = 0; m < count; m++)
        {
            var x = xs.Slice(m * InputDimension, InputDimension);
            var rows = input.AsSpan(m * batch * inSize, batch * inSize);
            if (IsFirst)
            {
                var norm = 0.0;
                for (var p = 0; p < inSize; p++)
                {
                    norm += x[p] * x[p];
                }

                for (var i = 0; i < batch; i++)
                {
                    for (var p = 0; p < inSize; p++)
                    {
                        rows[i * inSize + p] = (float)(images![i * inSize + p] + x[p]); // x_i + delta
                    }
                }

                carried[m] = penalty / 2 * norm; // (lambda/2) ||delta||^2
            }
            else
            {
                for (var i = 0; i < rows.Length; i++)
                {
                    rows[i] = (float)x[i];
                }

                carried[m] = x[^1];
            }
        }
    }

    /// <summary>
    /// (1/B) sum_i max(z_(y_i) - max_(j != y_i) z_j, -kappa) from the B images' logits; when <paramref name="gradient"/>
    /// is not empty, also its subgradient with respect to z: for an image above the clip, +1/B at y_i and -1/B at the
    /// first index j != y_i reaching the max; 0 for a clipped image (the clip's kink at -kappa counts as clipped).
    /// </summary>
    private double Margin(ReadOnlySpan<float> logits, Span<float> gradient)
    {
        gradient.Clear();
        var total = 0.0;
        for (var i = 0; i < batch; i++)
        {
            var z = logits.Slice(i * outSize, outSize);
            var y = labels![i];
            var best = -1;
            for (var j = 0; j < outSize; j++)
            {
                if (j != y && (best < 0 || z[j] > z[best]))
                {
                    best = j;
                }
            }

            var margin = (double)z[y] - z[best];
            if (margin > -kappa)
            {
                total += margin;
                if (!gradient.IsEmpty)
                {
                    gradient[i * outSize + y] = 1f / batch;
                    gradient[i * outSize + best] = -1f / batch;
                }
            }
            else
            {
                total -= kappa;
            }
        }

        return total / batch;
    }
}
