using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

[assembly: DisableRuntimeMarshalling]

namespace MpiPipeline.Torch;

/// <summary>
/// The C ABI of <c>native/mpp_bridge.h</c>, bound with [LibraryImport] to the library <see cref="BridgeLibrary"/>
/// loaded. Every function but the first two returns a status (0 = success); callers pass it through
/// <see cref="TorchException.Check"/>, never check it here. Flags are ints (0/1); counts are element counts.
/// </summary>
internal static unsafe partial class NativeMethods
{
    private const string Lib = BridgeLibrary.ImportName;

    [LibraryImport(Lib)] public static partial int mpp_bridge_version();
    [LibraryImport(Lib)] public static partial nint mpp_last_error();

    [LibraryImport(Lib)] public static partial int mpp_runtime_init(int threads);
    [LibraryImport(Lib)] public static partial int mpp_runtime_malloc_tuning(long* mmapThreshold, long* trimThreshold);
    [LibraryImport(Lib)] public static partial int mpp_runtime_torch_version(nint* version);
    [LibraryImport(Lib)] public static partial int mpp_runtime_cuda_device_count(int* count);
    [LibraryImport(Lib)] public static partial int mpp_runtime_cuda_compiled(int* compiled);
    [LibraryImport(Lib)] public static partial int mpp_runtime_set_threads(int threads);
    [LibraryImport(Lib)] public static partial int mpp_runtime_get_threads(int* threads);
    [LibraryImport(Lib)] public static partial int mpp_runtime_manual_seed(long seed);
    [LibraryImport(Lib)] public static partial int mpp_runtime_parallel_info(nint* text);
    [LibraryImport(Lib)] public static partial int mpp_runtime_gather_rows(float* source, long sourceRows, long rowLength, int* indices, long count, float* destination);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mpp_stage_create(string spec, long* sampleShape, int sampleRank, string device, long seed, out StageHandle stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_destroy(nint stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_parameter_count(StageHandle stage, long* count);
    [LibraryImport(Lib)] public static partial int mpp_stage_sample_shape(StageHandle stage, int which, long* dims, int capacity, int* rank);
    [LibraryImport(Lib)] public static partial int mpp_stage_parameters(StageHandle stage, float** data);
    [LibraryImport(Lib)] public static partial int mpp_stage_gradients(StageHandle stage, float** data);
    [LibraryImport(Lib)] public static partial int mpp_stage_pull_parameters(StageHandle stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_push_parameters(StageHandle stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_pull_gradients(StageHandle stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_push_gradients(StageHandle stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_zero_gradients(StageHandle stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_set_training(StageHandle stage, int training);
    [LibraryImport(Lib)] public static partial int mpp_stage_live_slots(StageHandle stage, int* count);
    [LibraryImport(Lib)] public static partial int mpp_stage_summary(StageHandle stage, nint* text);
    [LibraryImport(Lib)]
    public static partial int mpp_stage_forward(StageHandle stage, int slot, float* input, long inputCount, int batch,
        float* output, long outputCount, int requireInputGrad);
    [LibraryImport(Lib)]
    public static partial int mpp_stage_backward(StageHandle stage, int slot, float* outputGrad, long outputGradCount,
        float* inputGrad, long inputGradCount);
    [LibraryImport(Lib)]
    public static partial int mpp_stage_forward_loss_backward(StageHandle stage, float* input, long inputCount, int batch,
        int* labels, long labelCount, float lossScale, float* inputGrad, long inputGradCount, float* loss, int* correct);
    [LibraryImport(Lib)]
    public static partial int mpp_stage_evaluate(StageHandle stage, float* input, long inputCount, int batch,
        int* labels, long labelCount, float* loss, int* correct);
    [LibraryImport(Lib)]
    public static partial int mpp_stage_infer(StageHandle stage, float* input, long inputCount, int batch, float* output, long outputCount);

    [LibraryImport(Lib)] public static partial int mpp_stage_parameter_layout(StageHandle stage, long* offsets, long* sizes, int capacity, int* count);
    [LibraryImport(Lib)] public static partial int mpp_stage_set_gradient_hook(StageHandle stage, delegate* unmanaged<int, nint, void> callback, nint user);
    [LibraryImport(Lib)] public static partial int mpp_stage_arm_gradient_hook(StageHandle stage, int armed);

    [LibraryImport(Lib)] public static partial int mpp_stage_separate_host_mirrors(StageHandle stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_device_gradients(StageHandle stage, float** data);
    [LibraryImport(Lib)] public static partial int mpp_stage_copy_gradients(StageHandle stage, int toDevice, long offset, long count, long* ticket);
    [LibraryImport(Lib)] public static partial int mpp_stage_wait_copy(StageHandle stage, long ticket);
    [LibraryImport(Lib)] public static partial int mpp_stage_synchronize(StageHandle stage);
    [LibraryImport(Lib)] public static partial int mpp_stage_scale_gradients(StageHandle stage, float factor);

    [LibraryImport(Lib)] public static partial int mpp_stage_buffer_count(StageHandle stage, long* count);
    [LibraryImport(Lib)] public static partial int mpp_stage_get_buffers(StageHandle stage, float* values, long count);
    [LibraryImport(Lib)] public static partial int mpp_stage_set_buffers(StageHandle stage, float* values, long count);

    [LibraryImport(Lib)]
    public static partial int mpp_optimizer_create_sgd(StageHandle stage, double lr, double momentum, double dampening, int nesterov,
        double weightDecay, out OptimizerHandle optimizer);
    [LibraryImport(Lib)]
    public static partial int mpp_optimizer_create_adam(StageHandle stage, double lr, double beta1, double beta2, double eps,
        double weightDecay, out OptimizerHandle optimizer);
    [LibraryImport(Lib)] public static partial int mpp_optimizer_set_lr(OptimizerHandle optimizer, double lr);
    [LibraryImport(Lib)] public static partial int mpp_optimizer_step(OptimizerHandle optimizer);
    [LibraryImport(Lib)] public static partial int mpp_optimizer_destroy(nint optimizer);
    [LibraryImport(Lib)] public static partial int mpp_optimizer_state_info(OptimizerHandle optimizer, int* tensors, long* stepCount);
    [LibraryImport(Lib)] public static partial int mpp_optimizer_get_state(OptimizerHandle optimizer, int index, float* values, long count);
    [LibraryImport(Lib)] public static partial int mpp_optimizer_set_state(OptimizerHandle optimizer, int tensors, float* values, long count, long stepCount);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mpp_script_inspect(string path, long* sampleShape, int sampleRank, int* parts, int* sequential,
        long* parameters, long* outputDims, int outputCapacity, int* outputRank, nint* names);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mpp_stage_create_script(string path, int first, int count, long* sampleShape, int sampleRank,
        string device, out StageHandle stage);

    /// <summary>The dynamic linker, to load the bridge with the reason for a failure (dlerror) at hand.</summary>
    internal static partial class Dl
    {
        public const int RtldNow = 0x2;

        [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
        public static partial nint dlopen(string file, int mode);

        [LibraryImport("libc.so.6")]
        public static partial nint dlerror();
    }
}
