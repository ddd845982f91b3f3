using System.Runtime.InteropServices;

namespace MpiPipeline.Torch;

/// <summary>An optimizer's state: <paramref name="Tensors"/> flat tensors of the parameter count each, back to back in
/// <paramref name="Values"/>, and its step counter.</summary>
public sealed record OptimizerState(int Tensors, long StepCount, float[] Values);

/// <summary>
/// An optimizer on a stage's flat buffers, computed by the bridge with torch ops and torch.optim's formulas: it
/// reads the device flat gradients and updates the device flat parameters (on CPU those are
/// <see cref="Stage.Gradients"/> and <see cref="Stage.Parameters"/> themselves; on CUDA push the gradients first
/// and pull the parameters after, when C# needs them).
/// </summary>
public sealed class Optimizer : IDisposable
{
    private readonly Stage stage;
    private readonly OptimizerHandle handle;
    private double learningRate;

    private Optimizer(Stage stage, OptimizerHandle handle, double learningRate, string description)
    {
        this.stage = stage;
        this.handle = handle;
        this.learningRate = learningRate;
        Description = description;
    }

    /// <summary>
    /// torch.optim.SGD: d = g + weightDecay * theta; with momentum b = d on the first step, then
    /// b = momentum * b + (1 - dampening) * d; d = nesterov ? d + momentum * b : b; theta -= lr * d.
    /// </summary>
    public static Optimizer Sgd(Stage stage, double lr, double momentum = 0, double dampening = 0, bool nesterov = false, double weightDecay = 0)
    {
        ArgumentNullException.ThrowIfNull(stage);
        TorchException.Check(NativeMethods.mpp_optimizer_create_sgd(stage.Handle, lr, momentum, dampening, nesterov ? 1 : 0, weightDecay, out var handle));
        return new Optimizer(stage, handle, lr,
            $"SGD lr {lr} momentum {momentum} dampening {dampening} nesterov {nesterov} weight decay {weightDecay}");
    }

    /// <summary>
    /// torch.optim.Adam (L2 weight decay, no amsgrad): g += weightDecay * theta; m = b1 m + (1 - b1) g;
    /// v = b2 v + (1 - b2) g^2; theta -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    /// </summary>
    public static Optimizer Adam(Stage stage, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
    {
        ArgumentNullException.ThrowIfNull(stage);
        TorchException.Check(NativeMethods.mpp_optimizer_create_adam(stage.Handle, lr, beta1, beta2, eps, weightDecay, out var handle));
        return new Optimizer(stage, handle, lr, $"Adam lr {lr} betas ({beta1}, {beta2}) eps {eps} weight decay {weightDecay}");
    }

    /// <summary>What the optimizer is, with its settings at creation.</summary>
    public string Description { get; }

    /// <summary>Used by the next <see cref="Step"/>; may change between steps (schedules).</summary>
    public double LearningRate
    {
        get => learningRate;
        set
        {
            ObjectDisposedException.ThrowIf(handle.IsClosed, this);
            TorchException.Check(NativeMethods.mpp_optimizer_set_lr(handle, value));
            learningRate = value;
        }
    }

    /// <summary>
    /// One update of the parameters from the accumulated gradients (it does not zero them). Refused while the stage
    /// holds graphs: their backward would use parameters changed under them.
    /// </summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        var live = stage.LiveSlots;
        if (live > 0)
        {
            throw new TorchException("Optimizer.Step", BridgeStatus.InvalidArgument,
                $"the stage still holds {live} forward graph{(live == 1 ? "" : "s")}; run their backward before the optimizer step");
        }

        TorchException.Check(NativeMethods.mpp_optimizer_step(handle));
    }

    /// <summary>
    /// The optimizer's state, for a checkpoint: its flat state tensors back to back (each of the stage's parameter
    /// count: SGD's momentum buffer once it exists, Adam's exp_avg then exp_avg_sq) and its step counter (Adam's t).
    /// </summary>
    public unsafe OptimizerState ExportState()
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        var tensors = 0;
        long steps = 0;
        TorchException.Check(NativeMethods.mpp_optimizer_state_info(handle, &tensors, &steps));
        var length = stage.ParameterCount;
        var values = new float[checked(tensors * length)];
        // Pinned through the array's data reference: a stage without parameters has an empty array, which `fixed`
        // would turn into a null pointer that the bridge refuses.
        fixed (float* v = &MemoryMarshal.GetArrayDataReference(values))
        {
            for (var i = 0; i < tensors; i++)
            {
                TorchException.Check(NativeMethods.mpp_optimizer_get_state(handle, i, v + (i * length), length));
            }
        }

        return new OptimizerState(tensors, steps, values);
    }

    /// <summary>Replaces the state with one <see cref="ExportState"/> gave (of an optimizer of the same kind and length).</summary>
    public unsafe void ImportState(OptimizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        if (state.Values.Length != state.Tensors * stage.ParameterCount)
        {
            throw new ArgumentException($"{state.Tensors} state tensor(s) of {stage.ParameterCount} values need {state.Tensors * stage.ParameterCount} values, got {state.Values.Length}");
        }

        fixed (float* v = &MemoryMarshal.GetArrayDataReference(state.Values))
        {
            TorchException.Check(NativeMethods.mpp_optimizer_set_state(handle, state.Tensors, v, stage.ParameterCount, state.StepCount));
        }
    }

    public void Dispose() => handle.Dispose();
}
