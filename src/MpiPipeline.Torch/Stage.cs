using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace MpiPipeline.Torch;

/// <summary>Where one parameter's values (and its gradient's) lie in the flat buffers: elements [Offset, Offset + Length).</summary>
public readonly record struct ParameterExtent(int Offset, int Length);

/// <summary>Loss and accuracy of one batch: <see cref="Loss"/> is the mean cross-entropy over the batch.</summary>
public readonly record struct LossResult(float Loss, int Correct, int Count);

/// <summary>
/// A slice of a model on one device (a pipeline stage, or the whole model). All parameters live in one flat float
/// tensor and all gradients in one flat gradient tensor: <see cref="Parameters"/> and <see cref="Gradients"/> are
/// their memory (on CUDA, host mirrors moved with Pull/Push), so one span goes to MPI_Allreduce.
/// Several micro-batches can be in flight: <see cref="Forward"/> keeps the graph of a slot until <see cref="Backward"/>
/// for that slot. Gradients accumulate until <see cref="ZeroGradients"/>. One thread at a time.
/// </summary>
public sealed class Stage : IDisposable
{
    private readonly StageHandle handle;
    private readonly nint parameters;
    private readonly nint gradients;
    private readonly int flatLength;
    private bool training = true;

    // The gradient-ready hook: what it calls, the handle the native callback finds this stage by, how many backward
    // calls remain until the armed one, the thread that runs backward, and what the callback caught.
    private Action<int>? gradientReady;
    private GCHandle self;
    private int backwardsUntilArmed;
    private int backwardThread;
    private ExceptionDispatchInfo? hookFailure;

    private Stage(StageHandle handle, string device)
    {
        this.handle = handle;
        Device = device;
        unsafe
        {
            long count = 0;
            TorchException.Check(NativeMethods.mpp_stage_parameter_count(handle, &count));
            ParameterCount = count;
            flatLength = count <= int.MaxValue ? (int)count : -1;
            float* p = null, g = null;
            TorchException.Check(NativeMethods.mpp_stage_parameters(handle, &p));
            TorchException.Check(NativeMethods.mpp_stage_gradients(handle, &g));
            parameters = (nint)p;
            gradients = (nint)g;
        }

        SampleInputShape = Shape(0);
        SampleOutputShape = Shape(1);
        SampleInputSize = Product(SampleInputShape);
        SampleOutputSize = Product(SampleOutputShape);
    }

    /// <summary>
    /// Builds the layers for samples of <paramref name="sampleInputShape"/> (batch dimension excluded) on
    /// <paramref name="device"/> ("cpu" or "cuda:N"), parameters initialized as libtorch does from <paramref name="seed"/>
    /// (the same on every device). A layer that does not fit the shape it receives throws, naming the layer.
    /// Layers of a TorchScript module (<see cref="TorchScriptModel"/>): consecutive parts of one file, their parameters
    /// the file's (<paramref name="seed"/> unused).
    /// </summary>
    /// <param name="separateHostMirrors">On CPU: host mirrors that are copies, moved with Pull/Push and the gradient
    /// copies as on CUDA (the staging path tested without a GPU); CUDA stages always have them.</param>
    public static unsafe Stage Create(IReadOnlyList<LayerSpec> layers, ReadOnlySpan<int> sampleInputShape, string device = "cpu", long seed = 0,
        bool separateHostMirrors = false)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(device);
        LayerSpec.Validate(layers);
        BridgeLibrary.EnsureLoaded();
        var shape = new long[sampleInputShape.Length];
        for (var i = 0; i < shape.Length; i++)
        {
            shape[i] = sampleInputShape[i];
        }

        StageHandle handle;
        fixed (long* s = shape)
        {
            if (layers.Any(layer => layer?.Script is not null))
            {
                var (file, first, count) = TorchScriptModel.StageParts(layers);
                TorchException.Check(NativeMethods.mpp_stage_create_script(file, first, count, s, shape.Length, device, out handle));
            }
            else
            {
                TorchException.Check(NativeMethods.mpp_stage_create(LayerSpec.Format(layers), s, shape.Length, device, seed, out handle));
            }
        }

        if (separateHostMirrors)
        {
            var status = NativeMethods.mpp_stage_separate_host_mirrors(handle);
            if (status != 0)
            {
                handle.Dispose();
                TorchException.Check(status);
            }
        }

        return new Stage(handle, device) { SeparateHostMirrors = separateHostMirrors || device.StartsWith("cuda", StringComparison.Ordinal) };
    }

    public long ParameterCount { get; }

    public int[] SampleInputShape { get; }

    public int[] SampleOutputShape { get; }

    public int SampleInputSize { get; }

    public int SampleOutputSize { get; }

    public string Device { get; }

    public bool IsCuda => Device.StartsWith("cuda", StringComparison.Ordinal);

    /// <summary>The host mirrors are copies of the flat buffers (CUDA, or a CPU stage made so): gradients reach the
    /// host only through Pull or the range copies.</summary>
    public bool SeparateHostMirrors { get; private init; }

    /// <summary>The flat gradient buffer's own memory (device memory on CUDA): for MPI only, never read here.</summary>
    public unsafe Span<float> DeviceGradients
    {
        get
        {
            float* g = null;
            TorchException.Check(NativeMethods.mpp_stage_device_gradients(Handle, &g));
            return new(g, FlatLength);
        }
    }

    /// <summary>Starts copying gradient elements [offset, offset + length) device -> host mirror (<paramref name="toDevice"/>
    /// false, after backward) or back; the ticket is for <see cref="WaitCopy"/>. Synchronous on CPU.</summary>
    public unsafe long CopyGradients(bool toDevice, int offset, int length)
    {
        long ticket = 0;
        TorchException.Check(NativeMethods.mpp_stage_copy_gradients(Handle, toDevice ? 1 : 0, offset, length, &ticket));
        return ticket;
    }

    /// <summary>Blocks until the copy <paramref name="ticket"/> (and every earlier one) is done.</summary>
    public void WaitCopy(long ticket) => TorchException.Check(NativeMethods.mpp_stage_wait_copy(Handle, ticket));

    /// <summary>Device work from now on waits for the copies; this thread waits for the device's queued work.</summary>
    public void Synchronize() => TorchException.Check(NativeMethods.mpp_stage_synchronize(Handle));

    /// <summary>Flat gradients *= factor, on the stage's device.</summary>
    public void ScaleGradients(float factor) => TorchException.Check(NativeMethods.mpp_stage_scale_gradients(Handle, factor));

    /// <summary>
    /// The values of the model's floating-point buffers (BatchNorm's running means and variances), in layer order:
    /// state that is no parameter, so neither the gradient exchange nor the parameter averaging touches it. 0 without
    /// BatchNorm.
    /// </summary>
    public unsafe int BufferLength
    {
        get
        {
            long count = 0;
            TorchException.Check(NativeMethods.mpp_stage_buffer_count(Handle, &count));
            return checked((int)count);
        }
    }

    /// <summary>A copy of the buffers (<see cref="BufferLength"/> values), from the device on CUDA.</summary>
    public unsafe float[] GetBuffers()
    {
        var values = new float[BufferLength];
        fixed (float* v = values)
        {
            TorchException.Check(NativeMethods.mpp_stage_get_buffers(Handle, v, values.Length));
        }

        return values;
    }

    /// <summary>Replaces the buffers with <paramref name="values"/> (exactly <see cref="BufferLength"/> of them).</summary>
    public unsafe void SetBuffers(ReadOnlySpan<float> values)
    {
        fixed (float* v = values)
        {
            TorchException.Check(NativeMethods.mpp_stage_set_buffers(Handle, v, values.Length));
        }
    }

    /// <summary>CPU: the flat parameter tensor's own memory (writes change the model). CUDA: the host mirror.</summary>
    public unsafe Span<float> Parameters => new((void*)Pointer(parameters), FlatLength);

    /// <summary>CPU: the flat gradient tensor's own memory. CUDA: the host mirror.</summary>
    public unsafe Span<float> Gradients => new((void*)Pointer(gradients), FlatLength);

    /// <summary>Each parameter's place in the flat buffers, in layer order (the order of <see cref="Parameters"/>).</summary>
    public unsafe IReadOnlyList<ParameterExtent> Layout
    {
        get
        {
            var count = 0;
            TorchException.Check(NativeMethods.mpp_stage_parameter_layout(Handle, null, null, 0, &count));
            var offsets = new long[count];
            var sizes = new long[count];
            fixed (long* o = offsets)
            fixed (long* z = sizes)
            {
                TorchException.Check(NativeMethods.mpp_stage_parameter_layout(Handle, o, z, count, &count));
            }

            return [.. offsets.Select((offset, i) => new ParameterExtent(checked((int)offset), checked((int)sizes[i])))];
        }
    }

    /// <summary>
    /// Calls <paramref name="onReady"/>(parameter index) when that parameter's gradient is final in
    /// <see cref="Gradients"/>, during the backward call armed by <see cref="ArmGradientHook"/> (and no other), on the
    /// thread that called it. CPU only: libtorch runs a CUDA backward on its device threads, where the hook's MPI calls
    /// would race the main thread's (collectives must start in the same order on every rank). An exception thrown by <paramref name="onReady"/> never crosses the native
    /// frames: it is kept and rethrown by the backward call once the bridge has returned. Null removes the hook.
    /// </summary>
    public unsafe void SetGradientHook(Action<int>? onReady)
    {
        if (onReady is not null && IsCuda)
        {
            throw new InvalidOperationException("the gradient-ready hook runs on CPU stages only (a CUDA backward runs on libtorch's device threads)");
        }

        if (!self.IsAllocated)
        {
            self = GCHandle.Alloc(this);
        }

        gradientReady = onReady;
        TorchException.Check(onReady is null
            ? NativeMethods.mpp_stage_set_gradient_hook(Handle, null, 0)
            : NativeMethods.mpp_stage_set_gradient_hook(Handle, &GradientReady, GCHandle.ToIntPtr(self)));
    }

    /// <summary>
    /// Arms the gradient-ready hook for the <paramref name="backwardCall"/>-th backward call from now (1: the next
    /// <see cref="Backward"/> or <see cref="ForwardLossBackward"/>): with several micro-batches per step only the last
    /// backward leaves the gradients final. 0 disarms.
    /// </summary>
    public void ArmGradientHook(int backwardCall)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(backwardCall);
        backwardsUntilArmed = backwardCall;
    }

    /// <summary>Train mode (dropout active, batchnorm on batch statistics) for Forward and ForwardLossBackward; default true.
    /// Evaluate and Infer always run in eval mode.</summary>
    public bool Training
    {
        get => training;
        set
        {
            TorchException.Check(NativeMethods.mpp_stage_set_training(Handle, value ? 1 : 0));
            training = value;
        }
    }

    /// <summary>Graphs currently held (micro-batches forwarded and not yet backwarded).</summary>
    public unsafe int LiveSlots
    {
        get
        {
            var count = 0;
            TorchException.Check(NativeMethods.mpp_stage_live_slots(Handle, &count));
            return count;
        }
    }

    /// <summary>One line per layer: output shape per sample and parameter count.</summary>
    public unsafe string Summary
    {
        get
        {
            nint text = 0;
            TorchException.Check(NativeMethods.mpp_stage_summary(Handle, &text));
            return Marshal.PtrToStringUTF8(text) ?? "";
        }
    }

    internal StageHandle Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(handle.IsClosed, this);
            return handle;
        }
    }

    /// <summary>Device to host mirror (no-op on CPU).</summary>
    public void PullParameters() => TorchException.Check(NativeMethods.mpp_stage_pull_parameters(Handle));

    /// <summary>Host mirror to device (no-op on CPU).</summary>
    public void PushParameters() => TorchException.Check(NativeMethods.mpp_stage_push_parameters(Handle));

    public void PullGradients() => TorchException.Check(NativeMethods.mpp_stage_pull_gradients(Handle));

    public void PushGradients() => TorchException.Check(NativeMethods.mpp_stage_push_gradients(Handle));

    /// <summary>Zeroes the flat gradient tensor (and its host mirror on CUDA).</summary>
    public void ZeroGradients() => TorchException.Check(NativeMethods.mpp_stage_zero_gradients(Handle));

    /// <summary>
    /// Forward of <paramref name="batch"/> samples (input: batch x SampleInputSize floats, copied) into
    /// <paramref name="output"/> (batch x SampleOutputSize); the graph stays in <paramref name="slot"/> (which must be
    /// free) until <see cref="Backward"/>. Ask for <paramref name="requireInputGradient"/> to get the input gradient there.
    /// </summary>
    public unsafe void Forward(int slot, ReadOnlySpan<float> input, int batch, Span<float> output, bool requireInputGradient = false)
    {
        fixed (float* x = input)
        fixed (float* y = output)
        {
            TorchException.Check(NativeMethods.mpp_stage_forward(Handle, slot, x, input.Length, batch, y, output.Length,
                requireInputGradient ? 1 : 0));
        }
    }

    /// <summary>
    /// Backward of the graph in <paramref name="slot"/> with the gradient of its output; accumulates into
    /// <see cref="Gradients"/> and frees the slot. <paramref name="inputGradient"/> may be empty (not wanted).
    /// </summary>
    public unsafe void Backward(int slot, ReadOnlySpan<float> outputGradient, Span<float> inputGradient)
    {
        fixed (float* gy = outputGradient)
        fixed (float* gx = inputGradient)
        {
            var armed = BeforeBackward();
            var status = NativeMethods.mpp_stage_backward(Handle, slot, gy, outputGradient.Length, gx, inputGradient.Length);
            AfterBackward(armed);
            TorchException.Check(status);
        }
    }

    /// <summary>
    /// Last stage: forward, cross-entropy (mean over the batch) times <paramref name="lossScale"/>, backward; gradients
    /// accumulate into <see cref="Gradients"/>. Returns the unscaled mean loss. <paramref name="inputGradient"/> (of the
    /// scaled loss) may be empty. With M micro-batches per mini-batch, lossScale = 1/M gives the mini-batch mean.
    /// </summary>
    public unsafe LossResult ForwardLossBackward(ReadOnlySpan<float> input, int batch, ReadOnlySpan<int> labels, float lossScale, Span<float> inputGradient)
    {
        float loss = 0;
        var correct = 0;
        fixed (float* x = input)
        fixed (int* t = labels)
        fixed (float* gx = inputGradient)
        {
            var armed = BeforeBackward();
            var status = NativeMethods.mpp_stage_forward_loss_backward(Handle, x, input.Length, batch, t, labels.Length,
                lossScale, gx, inputGradient.Length, &loss, &correct);
            AfterBackward(armed);
            TorchException.Check(status);
        }

        return new LossResult(loss, correct, batch);
    }

    /// <summary>Loss (mean over the batch) and correct count, without a graph, in eval mode.</summary>
    public unsafe LossResult Evaluate(ReadOnlySpan<float> input, int batch, ReadOnlySpan<int> labels)
    {
        float loss = 0;
        var correct = 0;
        fixed (float* x = input)
        fixed (int* t = labels)
        {
            TorchException.Check(NativeMethods.mpp_stage_evaluate(Handle, x, input.Length, batch, t, labels.Length, &loss, &correct));
        }

        return new LossResult(loss, correct, batch);
    }

    /// <summary>Output only, without a graph, in eval mode (middle stages of a pipeline evaluation).</summary>
    public unsafe void Infer(ReadOnlySpan<float> input, int batch, Span<float> output)
    {
        fixed (float* x = input)
        fixed (float* y = output)
        {
            TorchException.Check(NativeMethods.mpp_stage_infer(Handle, x, input.Length, batch, y, output.Length));
        }
    }

    /// <summary>Frees the native stage (its tensors and any graphs still held). Spans taken from it become invalid.</summary>
    public void Dispose()
    {
        handle.Dispose();
        if (self.IsAllocated)
        {
            self.Free();
        }
    }

    /// <summary>Counts down to the armed backward call; arms the native hook for it. True when this call is armed.</summary>
    private bool BeforeBackward()
    {
        if (backwardsUntilArmed == 0 || --backwardsUntilArmed > 0)
        {
            return false;
        }

        backwardThread = Environment.CurrentManagedThreadId;
        hookFailure = null;
        TorchException.Check(NativeMethods.mpp_stage_arm_gradient_hook(Handle, 1));
        return true;
    }

    /// <summary>Disarms, then rethrows what the callback caught, now that no native frame is below.</summary>
    private void AfterBackward(bool armed)
    {
        if (!armed)
        {
            return;
        }

        TorchException.Check(NativeMethods.mpp_stage_arm_gradient_hook(Handle, 0));
        var failure = hookFailure;
        hookFailure = null;
        failure?.Throw();
    }

    [UnmanagedCallersOnly]
    private static void GradientReady(int parameterIndex, nint user)
    {
        // Nothing may unwind into libtorch's frames: every failure is kept for AfterBackward.
        if (GCHandle.FromIntPtr(user).Target is not Stage stage)
        {
            return;
        }

        try
        {
            if (stage.hookFailure is not null)
            {
                return;
            }

            if (Environment.CurrentManagedThreadId != stage.backwardThread)
            {
                throw new InvalidOperationException(
                    $"the gradient-ready hook ran on thread {Environment.CurrentManagedThreadId}, not on the thread that called backward ({stage.backwardThread}); " +
                    "the overlapped exchange starts its collectives in order on the thread that runs the step, so it cannot start them there (use --no-overlap)");
            }

            stage.gradientReady?.Invoke(parameterIndex);
        }
        catch (Exception e)
        {
            stage.hookFailure = ExceptionDispatchInfo.Capture(e);
        }
    }

    private unsafe int[] Shape(int which)
    {
        var dims = stackalloc long[16];
        var rank = 0;
        TorchException.Check(NativeMethods.mpp_stage_sample_shape(handle, which, dims, 16, &rank));
        var shape = new int[rank];
        for (var i = 0; i < rank; i++)
        {
            shape[i] = checked((int)dims[i]);
        }

        return shape;
    }

    private static int Product(int[] shape)
    {
        var product = 1L;
        foreach (var d in shape)
        {
            product *= d;
        }

        return checked((int)product);
    }

    private int FlatLength => flatLength >= 0 ? flatLength
        : throw new TorchException("Stage", BridgeStatus.InvalidArgument,
            $"{ParameterCount} parameters do not fit one span (at most {int.MaxValue}); split the model into more stages");

    private nint Pointer(nint pointer)
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        return pointer;
    }
}
