// Internal declarations shared by the bridge's translation units (never installed, never seen by C#).
#pragma once

#include <torch/torch.h>
#include <c10/core/Event.h>
#include <c10/core/Stream.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpp_bridge.h"

namespace mpp {

// A caller mistake (bad spec, wrong size, unknown slot, ...): reported as MPP_EINVALID with this message.
struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Stores the thread-local message read by mpp_last_error() and returns status.
int fail(int status, const std::string& message);

std::string shape_text(const std::vector<int64_t>& shape);
int64_t element_count(const std::vector<int64_t>& shape);

// One layer of a stage, parsed from the spec text (see mpp_stage_create).
struct LayerSpec {
    std::string kind;
    std::vector<int64_t> args;
    std::vector<LayerSpec> body;      // residual only
    std::vector<LayerSpec> shortcut;  // residual only: empty = the identity
    std::string text;             // as written, for messages
};

std::vector<LayerSpec> parse_layer_specs(const std::string& spec);

struct BuiltModel {
    torch::nn::Sequential model;
    std::vector<int64_t> sample_output_shape;
    std::string summary;
};

// Builds the layers one by one with push_back (argument order of Sequential(a, b, c) is unspecified, so
// initialization order would be too), checking each layer's arguments against the shape it receives.
BuiltModel build_model(const std::vector<LayerSpec>& layers, const std::vector<int64_t>& sample_input_shape);

// Parts [first, first + count) of the TorchScript module at path (the children of an nn.Sequential, else the module
// itself), loaded onto device, each checked with one sample of the shape it receives (script.cpp).
BuiltModel build_script_model(const std::string& path, int first, int count,
                              const std::vector<int64_t>& sample_input_shape, const torch::Device& device);

}  // namespace mpp

// A micro-batch in flight: its input (a leaf, requiring grad when the input gradient is wanted) and output.
struct MppSlot {
    torch::Tensor input;
    torch::Tensor output;
};

struct mpp_stage {
    torch::nn::Sequential model;
    torch::Device device{torch::kCPU};
    std::vector<int64_t> sample_input_shape;
    std::vector<int64_t> sample_output_shape;
    int64_t sample_input_size = 0;
    int64_t sample_output_size = 0;
    int64_t parameter_count = 0;
    // Every parameter is a view of flat_parameters and its .grad a view of flat_gradients (on the stage's device).
    torch::Tensor flat_parameters;
    torch::Tensor flat_gradients;
    // What C# reads and writes: the flat tensors themselves on CPU, pinned host mirrors on CUDA.
    torch::Tensor host_parameters;
    torch::Tensor host_gradients;
    // The grad accumulators the gradient-ready hooks are attached to: autograd keeps them by weak pointer only, so
    // without these a new accumulator (without the hook) would be made for every graph.
    std::vector<std::shared_ptr<torch::autograd::Node>> grad_accumulators;
    std::vector<int64_t> parameter_offsets;
    std::vector<int64_t> parameter_sizes;
    mpp_gradient_hook gradient_hook = nullptr;
    void* gradient_hook_user = nullptr;
    bool gradient_hook_armed = false;
    std::map<int, MppSlot> slots;
    bool training = true;
    std::string summary;
    // Staging (version 5): the host mirrors are separate memory (always on CUDA; on CPU after
    // mpp_stage_separate_host_mirrors), and on CUDA the side stream the bucket copies run on, with one event per copy
    // in flight (ticket -> event; tickets count up, the stream runs them in order).
    bool separate_mirrors = false;
    std::optional<c10::Stream> copy_stream;
    std::map<int64_t, c10::Event> copy_events;
    int64_t copies_issued = 0;
};

// Every export's body goes inside MPP_GUARDED(...): no exception leaves the library; each becomes a status code and
// a thread-local message (c10::Error without its C++ backtrace).
#define MPP_GUARDED(...)                                                                       \
    try {                                                                                      \
        __VA_ARGS__                                                                            \
        return MPP_OK;                                                                         \
    } catch (const mpp::InputError& e) {                                                       \
        return mpp::fail(MPP_EINVALID, e.what());                                              \
    } catch (const c10::OutOfMemoryError& e) {                                                 \
        return mpp::fail(MPP_ENOMEM, e.what_without_backtrace());                              \
    } catch (const c10::Error& e) {                                                            \
        return mpp::fail(MPP_ETORCH, e.what_without_backtrace());                              \
    } catch (const std::bad_alloc&) {                                                          \
        return mpp::fail(MPP_ENOMEM, "out of memory (std::bad_alloc)");                        \
    } catch (const std::exception& e) {                                                        \
        return mpp::fail(MPP_EINTERNAL, e.what());                                             \
    } catch (...) {                                                                            \
        return mpp::fail(MPP_EINTERNAL, "unknown C++ exception");                              \
    }

// Argument checks inside MPP_GUARDED bodies.
#define MPP_REQUIRE(condition, message)                 \
    do {                                                \
        if (!(condition)) throw mpp::InputError(message); \
    } while (0)
