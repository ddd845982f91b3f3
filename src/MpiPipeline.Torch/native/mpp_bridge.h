/*
 * mpp_bridge.h - the C ABI of the MpiPipeline libtorch bridge (libmpp_bridge.so).
 *
 * Every function but mpp_bridge_version and mpp_last_error returns a status: MPP_OK (0) or one of the MPP_E*
 * codes; on failure mpp_last_error() returns the message (thread-local, valid until the next failing call on the
 * same thread). No C++ exception ever leaves the library.
 *
 * Objects: a stage (a slice of a model, its flat parameter and gradient buffers, the graphs of the micro-batches
 * in flight) and an optimizer (state on the stage's flat buffers). Both are freed with their *_destroy function.
 * Counts are element counts; every buffer comes with its length and the library checks it before reading or
 * writing. The library is not thread-safe per object: one thread at a time per stage/optimizer.
 *
 * Bump MPP_BRIDGE_VERSION whenever a signature or a meaning changes; the C# side refuses another version.
 */
#ifndef MPP_BRIDGE_H
#define MPP_BRIDGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPP_BRIDGE_VERSION 7

#if defined(MPP_BUILDING_BRIDGE)
#define MPP_API __attribute__((visibility("default")))
#else
#define MPP_API
#endif

enum mpp_status {
    MPP_OK = 0,
    MPP_EINVALID = 1,  /* bad argument: layer spec, shape, size, slot, device, optimizer setting */
    MPP_ETORCH = 2,    /* libtorch raised c10::Error */
    MPP_ENOMEM = 3,    /* out of (host or device) memory */
    MPP_EINTERNAL = 4  /* any other C++ exception */
};

typedef struct mpp_stage mpp_stage;
typedef struct mpp_optimizer mpp_optimizer;

/* ---- library ---- */
MPP_API int mpp_bridge_version(void);
MPP_API const char* mpp_last_error(void);

/* ---- runtime ---- */
/* Once per process, before anything else: tunes glibc malloc (mmap/trim thresholds, unless the MALLOC_*_ variables
 * are set) and sets the intra-op thread count (threads <= 0: leave libtorch's default). */
MPP_API int mpp_runtime_init(int threads);
/* *applied_mmap_threshold: the mmap threshold in bytes set by mpp_runtime_init (0 when left to the environment). */
MPP_API int mpp_runtime_malloc_tuning(int64_t* applied_mmap_threshold, int64_t* applied_trim_threshold);
MPP_API int mpp_runtime_torch_version(const char** version);
MPP_API int mpp_runtime_cuda_device_count(int* count);   /* 0 for a CPU-only libtorch or no visible GPU */
MPP_API int mpp_runtime_cuda_compiled(int* compiled);     /* 1 when this libtorch has CUDA support */
MPP_API int mpp_runtime_set_threads(int threads);
MPP_API int mpp_runtime_get_threads(int* threads);
MPP_API int mpp_runtime_manual_seed(int64_t seed);
MPP_API int mpp_runtime_parallel_info(const char** text); /* at::get_parallel_info(); static storage */
/* destination[i, :] = source[indices[i], :] for i < count: rows of a row-major [source_rows, row_length] float array,
 * copied on libtorch's intra-op threads (index_select) - a training batch gathered from a data set in host memory.
 * Every index must be in [0, source_rows). (Version 2.) */
MPP_API int mpp_runtime_gather_rows(const float* source, int64_t source_rows, int64_t row_length, const int32_t* indices,
                                    int64_t count, float* destination);

/* ---- stage ---- */
/* spec: layers separated by ';', each "kind a b c" (decimal arguments), a residual block as "residual{...}" with its
 * body inside the braces. sample_shape: the shape of one input sample (batch dimension excluded).
 * device: "cpu" or "cuda:N". Parameters are initialized deterministically from seed (the global generator is
 * left as it was). */
MPP_API int mpp_stage_create(const char* spec, const int64_t* sample_shape, int sample_rank, const char* device,
                             int64_t seed, mpp_stage** stage);
MPP_API int mpp_stage_destroy(mpp_stage* stage);
MPP_API int mpp_stage_parameter_count(mpp_stage* stage, int64_t* count);
/* Writes up to capacity dimensions, *rank = the true rank. which: 0 = input sample, 1 = output sample. */
MPP_API int mpp_stage_sample_shape(mpp_stage* stage, int which, int64_t* dims, int capacity, int* rank);
/* Host memory of the flat buffers: on CPU the flat tensors themselves, on CUDA pinned host mirrors. */
MPP_API int mpp_stage_parameters(mpp_stage* stage, float** data);
MPP_API int mpp_stage_gradients(mpp_stage* stage, float** data);
/* Device <-> host mirror copies (no-ops on CPU). pull: device -> host, push: host -> device. */
MPP_API int mpp_stage_pull_parameters(mpp_stage* stage);
MPP_API int mpp_stage_push_parameters(mpp_stage* stage);
MPP_API int mpp_stage_pull_gradients(mpp_stage* stage);
MPP_API int mpp_stage_push_gradients(mpp_stage* stage);
MPP_API int mpp_stage_zero_gradients(mpp_stage* stage);
MPP_API int mpp_stage_set_training(mpp_stage* stage, int training);
MPP_API int mpp_stage_live_slots(mpp_stage* stage, int* count);
/* A text summary, one line per layer: kind, output shape per sample, parameter count. Valid while the stage lives. */
MPP_API int mpp_stage_summary(mpp_stage* stage, const char** text);

/* Forward of one micro-batch; keeps its graph in slot (a free slot) until mpp_stage_backward for that slot.
 * input: batch * input sample size floats; output: batch * output sample size floats. */
MPP_API int mpp_stage_forward(mpp_stage* stage, int slot, const float* input, int64_t input_count, int batch,
                              float* output, int64_t output_count, int require_input_grad);
/* Backward of the slot's graph with the gradient of its output; accumulates into the flat gradients and frees
 * the slot. input_grad may be NULL (not wanted); otherwise the slot must have been forwarded with
 * require_input_grad. */
MPP_API int mpp_stage_backward(mpp_stage* stage, int slot, const float* output_grad, int64_t output_grad_count,
                               float* input_grad, int64_t input_grad_count);
/* Last stage: forward, cross-entropy (mean over the batch) times loss_scale, backward (accumulating into the flat
 * gradients), all without a slot. *loss: the unscaled mean loss; *correct: arg-max predictions equal to labels. */
MPP_API int mpp_stage_forward_loss_backward(mpp_stage* stage, const float* input, int64_t input_count, int batch,
                                            const int32_t* labels, int64_t label_count, float loss_scale,
                                            float* input_grad, int64_t input_grad_count, float* loss, int* correct);
/* No graph, evaluation mode (dropout off, batchnorm running statistics): mean loss and correct count. */
MPP_API int mpp_stage_evaluate(mpp_stage* stage, const float* input, int64_t input_count, int batch,
                               const int32_t* labels, int64_t label_count, float* loss, int* correct);
/* No graph, evaluation mode: the output only. */
MPP_API int mpp_stage_infer(mpp_stage* stage, const float* input, int64_t input_count, int batch, float* output,
                            int64_t output_count);

/* ---- gradient-ready hook (version 3) ---- */
/* The layout of the flat buffers: for each parameter i < capacity (layer order), its offset and its element count in
 * the flat parameter and gradient buffers; *count = the number of parameters. */
MPP_API int mpp_stage_parameter_layout(mpp_stage* stage, int64_t* offsets, int64_t* sizes, int capacity, int* count);
/* callback(parameter_index, user) runs when a parameter's gradient is final in the flat gradient buffer: a post hook
 * on the parameter's gradient accumulator, so it runs on the thread that runs backward (the calling thread on CPU).
 * It fires only while the hook is armed (mpp_stage_arm_gradient_hook), once per parameter that gets a gradient in
 * that backward. NULL removes it. The callback must not unwind through the library (return normally). */
typedef void (*mpp_gradient_hook)(int parameter_index, void* user);
MPP_API int mpp_stage_set_gradient_hook(mpp_stage* stage, mpp_gradient_hook callback, void* user);
/* armed != 0: the next backward calls (mpp_stage_backward, mpp_stage_forward_loss_backward) report gradients. */
MPP_API int mpp_stage_arm_gradient_hook(mpp_stage* stage, int armed);

/* ---- optimizer (updates the stage's device flat parameters from its device flat gradients) ---- */
MPP_API int mpp_optimizer_create_sgd(mpp_stage* stage, double lr, double momentum, double dampening, int nesterov,
                                     double weight_decay, mpp_optimizer** optimizer);
MPP_API int mpp_optimizer_create_adam(mpp_stage* stage, double lr, double beta1, double beta2, double eps,
                                      double weight_decay, mpp_optimizer** optimizer);
MPP_API int mpp_optimizer_set_lr(mpp_optimizer* optimizer, double lr);
MPP_API int mpp_optimizer_step(mpp_optimizer* optimizer);
MPP_API int mpp_optimizer_destroy(mpp_optimizer* optimizer);

/* ---- optimizer state, for checkpoints (version 4) ---- */
/* The state is *tensors flat tensors of the stage's parameter count each (SGD with momentum after its first step: 1,
 * the momentum buffer; SGD otherwise: 0; Adam: 2, exp_avg then exp_avg_sq) and a step counter (Adam's t; SGD: 0). */
MPP_API int mpp_optimizer_state_info(mpp_optimizer* optimizer, int* tensors, int64_t* step_count);
/* Copies state tensor index (< *tensors) to host memory: count must be the stage's parameter count. */
MPP_API int mpp_optimizer_get_state(mpp_optimizer* optimizer, int index, float* values, int64_t count);
/* Replaces the whole state: tensors flat tensors of count = parameter count each, back to back in values (tensors *
 * count floats), and the step counter. SGD takes 0 or (with momentum) 1 tensor, Adam exactly 2. */
MPP_API int mpp_optimizer_set_state(mpp_optimizer* optimizer, int tensors, const float* values, int64_t count,
                                    int64_t step_count);

/* ---- device-resident gradients (version 5) ---- */
/* The flat gradient buffer stays on the stage's device; an exchange moves it through the host mirror (pinned on CUDA)
 * in ranges, each copy asynchronous on a copy stream of the stage's own, so that one range's copy overlaps another's
 * Allreduce; or, with a CUDA-aware MPI, hands MPI the device memory itself. */
/* A CPU stage whose host mirrors are separate memory, copied like a CUDA stage's: the staging path without a GPU
 * (tests). Before the first forward; a no-op on CUDA. */
MPP_API int mpp_stage_separate_host_mirrors(mpp_stage* stage);
/* The flat gradient buffer's own memory (device memory on CUDA): for a CUDA-aware MPI only. */
MPP_API int mpp_stage_device_gradients(mpp_stage* stage, float** data);
/* Starts copying gradient elements [offset, offset + count) between the flat buffer and the host mirror:
 * to_device 0: device -> host, after the work queued on the device so far (backward); 1: host -> device. *ticket
 * identifies the copy for mpp_stage_wait_copy. CPU: done on return. */
MPP_API int mpp_stage_copy_gradients(mpp_stage* stage, int to_device, int64_t offset, int64_t count, int64_t* ticket);
/* Blocks until copy `ticket` (and every copy started before it) is done. */
MPP_API int mpp_stage_wait_copy(mpp_stage* stage, int64_t ticket);
/* The device's work from now on (the optimizer) waits for every copy started so far, and the calling thread waits for
 * the device's work queued so far (before MPI reads device memory). */
MPP_API int mpp_stage_synchronize(mpp_stage* stage);
/* Flat gradients *= factor, on the device (the 1/n of a CUDA-aware Allreduce). */
MPP_API int mpp_stage_scale_gradients(mpp_stage* stage, float factor);

/* ---- buffers (version 6) ---- */
/* The stage's floating-point buffers (BatchNorm's running mean and variance), back to back in layer order as
 * Module::buffers() lists them: state that is not a parameter, which data-parallel replicas average before an
 * evaluation and a checkpoint stores. Integer buffers (BatchNorm's num_batches_tracked, read only when momentum is
 * unset, which the bridge never leaves it) are not among them. *count: their element count (0 without BatchNorm). */
MPP_API int mpp_stage_buffer_count(mpp_stage* stage, int64_t* count);
/* Copies the buffers to values (count must be the buffer count), from the device on CUDA. */
MPP_API int mpp_stage_get_buffers(mpp_stage* stage, float* values, int64_t count);
/* Replaces the buffers with values (count must be the buffer count). */
MPP_API int mpp_stage_set_buffers(mpp_stage* stage, const float* values, int64_t count);

/* ---- TorchScript modules (version 7) ---- */
/* A module saved by PyTorch (torch.jit.script(model).save(path)), loaded with torch::jit::load. Its parts: the
 * children of a module whose top level is torch.nn.Sequential (a pipeline may cut it between them), otherwise the
 * module itself (one part). *parts: the part count; *sequential: 1 for an nn.Sequential; *parameters: the trainable
 * parameter count (requires_grad); *names: one line per part, "index type" for a child of a Sequential, else the
 * module's type (thread-local, valid until this function's next call on the thread). A missing file or one that is
 * not TorchScript: MPP_EINVALID. With sample_rank > 0 one sample of sample_shape (zeros, eval mode, no graph) runs
 * through the module: one it does not take fails with MPP_EINVALID naming the shape and libtorch's reason; otherwise
 * output_dims (up to output_capacity) and *output_rank give the output per sample. */
MPP_API int mpp_script_inspect(const char* path, const int64_t* sample_shape, int sample_rank, int* parts,
                               int* sequential, int64_t* parameters, int64_t* output_dims, int output_capacity,
                               int* output_rank, const char** names);
/* A stage of parts [first, first + count) of the TorchScript module at path, in order, for samples of sample_shape
 * (checked by running one), on device ("cpu" or "cuda:N"). Its parameters start at the file's values (no seed) and
 * are views of the flat buffers in the order of the module's named_parameters(); its buffers (BatchNorm running
 * statistics) are the module's own, updated by its forward in train mode and read in eval mode. Everything else is
 * an mpp_stage_create stage. */
MPP_API int mpp_stage_create_script(const char* path, int first, int count, const int64_t* sample_shape,
                                    int sample_rank, const char* device, mpp_stage** stage);

#ifdef __cplusplus
}
#endif

#endif /* MPP_BRIDGE_H */
