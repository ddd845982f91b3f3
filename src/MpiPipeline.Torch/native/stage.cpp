// A stage: a slice of a model whose parameters and gradients are views of two flat tensors, with several
// micro-batch graphs in flight (slots), a fused last-stage loss, and graph-free evaluation.
#include "bridge.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/cuda.h>

#include <cstring>
#include <memory>
#include <sstream>

namespace {

using mpp::InputError;
using mpp::shape_text;

torch::Device parse_device(const std::string& text) {
    if (text == "cpu") return torch::Device(torch::kCPU);
    if (text.rfind("cuda", 0) != 0) {
        throw InputError("unknown device '" + text + "' (use cpu or cuda:N)");
    }
    torch::Device device(torch::kCPU);
    try {
        device = torch::Device(text);
    } catch (const c10::Error&) {
        throw InputError("device '" + text + "' is not cpu or cuda:N");
    }
    if (!at::hasCUDA()) {
        throw InputError("device " + text +
                         " requested, but this libtorch has no CUDA support (Debian's libtorch-dev is CPU-only; "
                         "build the bridge against a CUDA PyTorch with 'make bridge-cuda')");
    }
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    const auto index = device.has_index() ? static_cast<int64_t>(device.index()) : 0;
    if (count == 0) throw InputError("device " + text + " requested, but no GPU is visible");
    if (index >= count) {
        throw InputError("device " + text + " requested, but only " + std::to_string(count) + " GPU" +
                         (count == 1 ? " is" : "s are") + " visible (cuda:0 to cuda:" + std::to_string(count - 1) + ")");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// Parameter initialization draws from the default CPU generator: seed it for the build, then put its state back
// so that creating a stage does not change the random stream of anything else (dropout, other stages).
class SeededDefaultGenerator {
public:
    explicit SeededDefaultGenerator(int64_t seed) : generator_(at::detail::getDefaultCPUGenerator()) {
        saved_ = generator_.get_state();
        generator_.set_current_seed(static_cast<uint64_t>(seed));
    }
    ~SeededDefaultGenerator() { generator_.set_state(saved_); }
    SeededDefaultGenerator(const SeededDefaultGenerator&) = delete;
    SeededDefaultGenerator& operator=(const SeededDefaultGenerator&) = delete;

private:
    at::Generator generator_;
    torch::Tensor saved_;
};

// Evaluation mode for one call, then back to the stage's mode.
class EvalModeScope {
public:
    explicit EvalModeScope(mpp_stage* stage) : stage_(stage) { stage_->model->eval(); }
    ~EvalModeScope() { stage_->model->train(stage_->training); }
    EvalModeScope(const EvalModeScope&) = delete;
    EvalModeScope& operator=(const EvalModeScope&) = delete;

private:
    mpp_stage* stage_;
};

mpp_stage* checked(mpp_stage* stage) {
    MPP_REQUIRE(stage != nullptr, "null stage");
    return stage;
}

std::string live_slot_list(const mpp_stage* stage) {
    if (stage->slots.empty()) return "none";
    std::ostringstream text;
    bool first = true;
    for (const auto& [slot, _] : stage->slots) {
        text << (first ? "" : ", ") << slot;
        first = false;
    }
    return text.str();
}

void check_batch(int batch) {
    MPP_REQUIRE(batch > 0, "the batch size must be positive, got " + std::to_string(batch));
}

void check_count(const char* what, int64_t count, int batch, int64_t per_sample, const std::vector<int64_t>& shape) {
    const auto expected = static_cast<int64_t>(batch) * per_sample;
    if (count != expected) {
        throw InputError(std::string(what) + " has " + std::to_string(count) + " floats, expected batch " +
                         std::to_string(batch) + " x " + std::to_string(per_sample) + " = " + std::to_string(expected) +
                         " (sample shape " + shape_text(shape) + ")");
    }
}

// A copy of host floats as a [batch, sample...] tensor on the stage's device: autograd keeps the input of a graph
// after the call returns, so it must never alias C# memory.
torch::Tensor batch_tensor(const mpp_stage* stage, const float* data, int batch, const std::vector<int64_t>& sample) {
    std::vector<int64_t> shape{batch};
    shape.insert(shape.end(), sample.begin(), sample.end());
    auto host = torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32);
    return stage->device.is_cpu() ? host.clone() : host.to(stage->device);
}

// The same batch for a call that is done with it when it returns (the fused loss + backward, evaluate, infer: the
// graph, if any, is consumed inside the call): on CPU a view of the caller's memory, no copy - C# keeps it pinned
// for the call. Saves a batch-sized allocation and copy per training step.
torch::Tensor batch_for_this_call(const mpp_stage* stage, const float* data, int batch, const std::vector<int64_t>& sample) {
    if (!stage->device.is_cpu()) return batch_tensor(stage, data, batch, sample);
    std::vector<int64_t> shape{batch};
    shape.insert(shape.end(), sample.begin(), sample.end());
    return torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32);
}

void copy_to_host(const torch::Tensor& tensor, float* destination, int64_t count) {
    auto host = tensor.detach().to(torch::kCPU).contiguous();
    if (host.numel() != count) {
        throw std::logic_error("internal: result has " + std::to_string(host.numel()) + " elements, expected " +
                               std::to_string(count));
    }
    if (count > 0) std::memcpy(destination, host.data_ptr<float>(), static_cast<size_t>(count) * sizeof(float));
}

torch::Tensor label_tensor(const mpp_stage* stage, const int32_t* labels, int64_t label_count, int batch) {
    MPP_REQUIRE(stage->sample_output_shape.size() == 1,
                "a loss needs class scores per sample ([classes]), this stage outputs " +
                    shape_text(stage->sample_output_shape) + " per sample");
    MPP_REQUIRE(label_count == batch, "got " + std::to_string(label_count) + " labels for a batch of " +
                                          std::to_string(batch));
    MPP_REQUIRE(labels != nullptr, "null labels");
    const auto classes = stage->sample_output_shape[0];
    for (int64_t i = 0; i < label_count; i++) {
        if (labels[i] < 0 || labels[i] >= classes) {
            throw InputError("label " + std::to_string(labels[i]) + " (sample " + std::to_string(i) +
                             ") is outside 0.." + std::to_string(classes - 1) + " (the stage outputs " +
                             std::to_string(classes) + " classes)");
        }
    }
    auto host = torch::from_blob(const_cast<int32_t*>(labels), {label_count}, torch::kInt32);
    return host.to(stage->device, torch::kLong);
}

int correct_count(const torch::Tensor& logits, const torch::Tensor& labels) {
    return static_cast<int>(logits.detach().argmax(1).eq(labels).sum().item<int64_t>());
}

void build_flat_buffers(mpp_stage* stage) {
    torch::NoGradGuard no_grad;
    auto parameters = stage->model->parameters();
    int64_t total = 0;
    for (const auto& p : parameters) total += p.numel();
    const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(stage->device);
    stage->flat_parameters = torch::empty({total}, options);
    stage->flat_gradients = torch::zeros({total}, options);
    int64_t offset = 0;
    for (auto& p : parameters) {
        const auto n = p.numel();
        auto view = stage->flat_parameters.narrow(0, offset, n).view(p.sizes());
        view.copy_(p);
        p.set_data(view);
        p.mutable_grad() = stage->flat_gradients.narrow(0, offset, n).view(p.sizes());
        stage->parameter_offsets.push_back(offset);
        stage->parameter_sizes.push_back(n);
        offset += n;
    }
    stage->parameter_count = total;
    if (stage->device.is_cpu()) {
        stage->host_parameters = stage->flat_parameters;
        stage->host_gradients = stage->flat_gradients;
    } else {
        const auto pinned = torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true);
        stage->host_parameters = torch::empty({total}, pinned);
        stage->host_parameters.copy_(stage->flat_parameters);
        stage->host_gradients = torch::zeros({total}, pinned);
        stage->separate_mirrors = true;
    }
}

// Runs after a parameter's gradient accumulator has added this backward's gradient into its view of the flat
// gradient buffer (as PyTorch's DDP reducer hooks it): the gradient is final there when the hook is armed.
class GradientReadyHook : public torch::autograd::FunctionPostHook {
public:
    GradientReadyHook(mpp_stage* stage, int index) : stage_(stage), index_(index) {}

    torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                              const torch::autograd::variable_list&) override {
        if (stage_->gradient_hook_armed && stage_->gradient_hook != nullptr) {
            stage_->gradient_hook(index_, stage_->gradient_hook_user);
        }
        return outputs;
    }

private:
    mpp_stage* stage_;
    int index_;
};

void attach_gradient_hooks(mpp_stage* stage) {
    auto parameters = stage->model->parameters();
    for (size_t i = 0; i < parameters.size(); i++) {
        auto accumulator = torch::autograd::impl::grad_accumulator(parameters[i]);
        if (!accumulator) throw std::logic_error("internal: parameter " + std::to_string(i) + " has no grad accumulator");
        accumulator->add_post_hook(std::make_unique<GradientReadyHook>(stage, static_cast<int>(i)));
        stage->grad_accumulators.push_back(std::move(accumulator));
    }
}

// The shapes were inferred layer by layer; one graph-free sample through the model confirms them.
void confirm_output_shape(mpp_stage* stage) {
    torch::NoGradGuard no_grad;
    EvalModeScope eval(stage);
    std::vector<int64_t> shape{1};
    shape.insert(shape.end(), stage->sample_input_shape.begin(), stage->sample_input_shape.end());
    auto y = stage->model->forward(torch::zeros(shape, torch::TensorOptions().device(stage->device)));
    std::vector<int64_t> expected{1};
    expected.insert(expected.end(), stage->sample_output_shape.begin(), stage->sample_output_shape.end());
    if (y.sizes().vec() != expected) {
        throw std::logic_error("internal: inferred output shape " + shape_text(expected) + " but the model gives " +
                               shape_text(y.sizes().vec()));
    }
}

std::vector<torch::Tensor> float_buffers(mpp_stage* stage) {
    std::vector<torch::Tensor> buffers;
    for (const auto& buffer : stage->model->buffers()) {
        if (buffer.is_floating_point()) buffers.push_back(buffer);
    }
    return buffers;
}

int64_t checked_buffer_count(mpp_stage* stage, int64_t count) {
    int64_t total = 0;
    for (const auto& buffer : float_buffers(stage)) total += buffer.numel();
    MPP_REQUIRE(count == total, "the stage has " + std::to_string(total) + " buffer values, the call passed " +
                                    std::to_string(count));
    return total;
}

std::vector<int64_t> checked_sample_shape(const int64_t* sample_shape, int sample_rank) {
    MPP_REQUIRE(sample_rank >= 1 && sample_rank <= 8 && sample_shape != nullptr,
                "the sample shape needs 1 to 8 dimensions, got " + std::to_string(sample_rank));
    std::vector<int64_t> input_shape(sample_shape, sample_shape + sample_rank);
    for (auto d : input_shape) {
        MPP_REQUIRE(d > 0, "the sample shape " + shape_text(input_shape) + " has a dimension that is not positive");
    }
    return input_shape;
}

// A built model becomes a stage: on its device, parameters moved into the flat buffers, hooks attached, shapes
// confirmed, in train mode.
std::unique_ptr<mpp_stage> finish_stage(mpp::BuiltModel built, const std::vector<int64_t>& input_shape,
                                        const torch::Device& device) {
    auto stage = std::make_unique<mpp_stage>();
    stage->device = device;
    stage->model = built.model;
    stage->sample_output_shape = built.sample_output_shape;
    stage->summary = built.summary;
    stage->sample_input_shape = input_shape;
    stage->sample_input_size = mpp::element_count(input_shape);
    stage->sample_output_size = mpp::element_count(stage->sample_output_shape);
    // Module::to() replaces parameter data: only before the flat buffers exist (never after).
    if (!stage->device.is_cpu()) stage->model->to(stage->device);
    build_flat_buffers(stage.get());
    attach_gradient_hooks(stage.get());
    stage->summary += "parameters " + std::to_string(stage->parameter_count) + ", device " + stage->device.str() + "\n";
    confirm_output_shape(stage.get());
    stage->model->train(true);
    return stage;
}

}  // namespace

extern "C" {

int mpp_stage_create(const char* spec, const int64_t* sample_shape, int sample_rank, const char* device,
                     int64_t seed, mpp_stage** stage_out) {
    MPP_GUARDED({
        MPP_REQUIRE(stage_out != nullptr, "null output pointer");
        *stage_out = nullptr;
        MPP_REQUIRE(spec != nullptr && device != nullptr, "null layer spec or device");
        const auto input_shape = checked_sample_shape(sample_shape, sample_rank);
        const auto parsed_device = parse_device(device);
        const auto layers = mpp::parse_layer_specs(spec);
        mpp::BuiltModel built;
        {
            SeededDefaultGenerator seeded(seed);
            built = mpp::build_model(layers, input_shape);
        }
        *stage_out = finish_stage(std::move(built), input_shape, parsed_device).release();
    })
}

int mpp_stage_destroy(mpp_stage* stage) {
    MPP_GUARDED({ delete stage; })
}

int mpp_stage_parameter_count(mpp_stage* stage, int64_t* count) {
    MPP_GUARDED({
        MPP_REQUIRE(count != nullptr, "null output pointer");
        *count = checked(stage)->parameter_count;
    })
}

int mpp_stage_sample_shape(mpp_stage* stage, int which, int64_t* dims, int capacity, int* rank) {
    MPP_GUARDED({
        MPP_REQUIRE(rank != nullptr && (dims != nullptr || capacity == 0), "null output pointer");
        MPP_REQUIRE(which == 0 || which == 1, "which must be 0 (input) or 1 (output)");
        const auto& shape = which == 0 ? checked(stage)->sample_input_shape : checked(stage)->sample_output_shape;
        *rank = static_cast<int>(shape.size());
        for (int i = 0; i < capacity && i < static_cast<int>(shape.size()); i++) dims[i] = shape[i];
    })
}

int mpp_stage_parameters(mpp_stage* stage, float** data) {
    MPP_GUARDED({
        MPP_REQUIRE(data != nullptr, "null output pointer");
        *data = checked(stage)->host_parameters.data_ptr<float>();
    })
}

int mpp_stage_gradients(mpp_stage* stage, float** data) {
    MPP_GUARDED({
        MPP_REQUIRE(data != nullptr, "null output pointer");
        *data = checked(stage)->host_gradients.data_ptr<float>();
    })
}

int mpp_stage_pull_parameters(mpp_stage* stage) {
    MPP_GUARDED({
        if (checked(stage)->separate_mirrors) stage->host_parameters.copy_(stage->flat_parameters);
    })
}

int mpp_stage_push_parameters(mpp_stage* stage) {
    MPP_GUARDED({
        torch::NoGradGuard no_grad;
        if (checked(stage)->separate_mirrors) stage->flat_parameters.copy_(stage->host_parameters);
    })
}

int mpp_stage_pull_gradients(mpp_stage* stage) {
    MPP_GUARDED({
        if (checked(stage)->separate_mirrors) stage->host_gradients.copy_(stage->flat_gradients);
    })
}

int mpp_stage_push_gradients(mpp_stage* stage) {
    MPP_GUARDED({
        if (checked(stage)->separate_mirrors) stage->flat_gradients.copy_(stage->host_gradients);
    })
}

int mpp_stage_zero_gradients(mpp_stage* stage) {
    MPP_GUARDED({
        // Never Module::zero_grad(): it would replace the .grad views (pitfall 6).
        checked(stage)->flat_gradients.zero_();
        if (stage->separate_mirrors) stage->host_gradients.zero_();
    })
}

int mpp_stage_set_training(mpp_stage* stage, int training) {
    MPP_GUARDED({
        checked(stage)->training = training != 0;
        stage->model->train(stage->training);
    })
}

int mpp_stage_live_slots(mpp_stage* stage, int* count) {
    MPP_GUARDED({
        MPP_REQUIRE(count != nullptr, "null output pointer");
        *count = static_cast<int>(checked(stage)->slots.size());
    })
}

int mpp_stage_summary(mpp_stage* stage, const char** text) {
    MPP_GUARDED({
        MPP_REQUIRE(text != nullptr, "null output pointer");
        *text = checked(stage)->summary.c_str();
    })
}

int mpp_stage_parameter_layout(mpp_stage* stage, int64_t* offsets, int64_t* sizes, int capacity, int* count) {
    MPP_GUARDED({
        MPP_REQUIRE(count != nullptr && ((offsets != nullptr && sizes != nullptr) || capacity == 0), "null output pointer");
        const auto n = static_cast<int>(checked(stage)->parameter_offsets.size());
        *count = n;
        for (int i = 0; i < capacity && i < n; i++) {
            offsets[i] = stage->parameter_offsets[i];
            sizes[i] = stage->parameter_sizes[i];
        }
    })
}

int mpp_stage_set_gradient_hook(mpp_stage* stage, mpp_gradient_hook callback, void* user) {
    MPP_GUARDED({
        checked(stage)->gradient_hook = callback;
        stage->gradient_hook_user = callback != nullptr ? user : nullptr;
    })
}

int mpp_stage_arm_gradient_hook(mpp_stage* stage, int armed) {
    MPP_GUARDED({ checked(stage)->gradient_hook_armed = armed != 0; })
}

int mpp_stage_forward(mpp_stage* stage, int slot, const float* input, int64_t input_count, int batch, float* output,
                      int64_t output_count, int require_input_grad) {
    MPP_GUARDED({
        checked(stage);
        MPP_REQUIRE(slot >= 0, "slot numbers are not negative, got " + std::to_string(slot));
        MPP_REQUIRE(stage->slots.find(slot) == stage->slots.end(),
                    "slot " + std::to_string(slot) + " already holds a forward graph; run backward for it first " +
                        "(slots in flight: " + live_slot_list(stage) + ")");
        check_batch(batch);
        check_count("the input", input_count, batch, stage->sample_input_size, stage->sample_input_shape);
        check_count("the output buffer", output_count, batch, stage->sample_output_size, stage->sample_output_shape);
        MPP_REQUIRE(input != nullptr && output != nullptr, "null input or output");
        torch::AutoGradMode grad_mode(true);
        auto x = batch_tensor(stage, input, batch, stage->sample_input_shape);
        if (require_input_grad) x.requires_grad_(true);
        auto y = stage->model->forward(x);
        copy_to_host(y, output, output_count);
        stage->slots[slot] = MppSlot{x, y};
    })
}

int mpp_stage_backward(mpp_stage* stage, int slot, const float* output_grad, int64_t output_grad_count,
                       float* input_grad, int64_t input_grad_count) {
    MPP_GUARDED({
        checked(stage);
        auto found = stage->slots.find(slot);
        MPP_REQUIRE(found != stage->slots.end(), "slot " + std::to_string(slot) +
                                                     " holds no forward graph (slots in flight: " +
                                                     live_slot_list(stage) + ")");
        const auto batch = static_cast<int>(found->second.output.size(0));
        check_count("the output gradient", output_grad_count, batch, stage->sample_output_size,
                    stage->sample_output_shape);
        MPP_REQUIRE(output_grad != nullptr, "null output gradient");
        if (input_grad != nullptr) {
            MPP_REQUIRE(found->second.input.requires_grad(),
                        "slot " + std::to_string(slot) +
                            " was forwarded without requireInputGradient, so it has no input gradient");
            check_count("the input gradient buffer", input_grad_count, batch, stage->sample_input_size,
                        stage->sample_input_shape);
        }
        // From here on the slot is consumed, whatever happens.
        auto state = std::move(found->second);
        stage->slots.erase(found);
        auto g = batch_tensor(stage, output_grad, batch, stage->sample_output_shape);
        if (state.output.requires_grad()) {
            state.output.backward(g);  // accumulates into the flat gradient views
        }
        if (input_grad != nullptr) {
            auto gx = state.input.grad();
            if (gx.defined()) {
                copy_to_host(gx, input_grad, input_grad_count);
            } else {
                std::memset(input_grad, 0, static_cast<size_t>(input_grad_count) * sizeof(float));
            }
        }
    })
}

int mpp_stage_forward_loss_backward(mpp_stage* stage, const float* input, int64_t input_count, int batch,
                                    const int32_t* labels, int64_t label_count, float loss_scale, float* input_grad,
                                    int64_t input_grad_count, float* loss, int* correct) {
    MPP_GUARDED({
        checked(stage);
        MPP_REQUIRE(loss != nullptr && correct != nullptr, "null output pointer");
        check_batch(batch);
        check_count("the input", input_count, batch, stage->sample_input_size, stage->sample_input_shape);
        MPP_REQUIRE(input != nullptr, "null input");
        if (input_grad != nullptr) {
            check_count("the input gradient buffer", input_grad_count, batch, stage->sample_input_size,
                        stage->sample_input_shape);
        }
        auto target = label_tensor(stage, labels, label_count, batch);
        torch::AutoGradMode grad_mode(true);
        auto x = batch_for_this_call(stage, input, batch, stage->sample_input_shape);
        if (input_grad != nullptr) x.requires_grad_(true);
        auto logits = stage->model->forward(x);
        auto mean_loss = torch::nn::functional::cross_entropy(logits, target);
        if (mean_loss.requires_grad()) {
            mean_loss.backward(torch::full_like(mean_loss, loss_scale));
        }
        *loss = mean_loss.item<float>();
        *correct = correct_count(logits, target);
        if (input_grad != nullptr) {
            auto gx = x.grad();
            if (gx.defined()) {
                copy_to_host(gx, input_grad, input_grad_count);
            } else {
                std::memset(input_grad, 0, static_cast<size_t>(input_grad_count) * sizeof(float));
            }
        }
    })
}

int mpp_stage_evaluate(mpp_stage* stage, const float* input, int64_t input_count, int batch, const int32_t* labels,
                       int64_t label_count, float* loss, int* correct) {
    MPP_GUARDED({
        checked(stage);
        MPP_REQUIRE(loss != nullptr && correct != nullptr, "null output pointer");
        check_batch(batch);
        check_count("the input", input_count, batch, stage->sample_input_size, stage->sample_input_shape);
        MPP_REQUIRE(input != nullptr, "null input");
        auto target = label_tensor(stage, labels, label_count, batch);
        torch::NoGradGuard no_grad;
        EvalModeScope eval(stage);
        auto logits = stage->model->forward(batch_for_this_call(stage, input, batch, stage->sample_input_shape));
        *loss = torch::nn::functional::cross_entropy(logits, target).item<float>();
        *correct = correct_count(logits, target);
    })
}

int mpp_stage_infer(mpp_stage* stage, const float* input, int64_t input_count, int batch, float* output,
                    int64_t output_count) {
    MPP_GUARDED({
        checked(stage);
        check_batch(batch);
        check_count("the input", input_count, batch, stage->sample_input_size, stage->sample_input_shape);
        check_count("the output buffer", output_count, batch, stage->sample_output_size, stage->sample_output_shape);
        MPP_REQUIRE(input != nullptr && output != nullptr, "null input or output");
        torch::NoGradGuard no_grad;
        EvalModeScope eval(stage);
        copy_to_host(stage->model->forward(batch_for_this_call(stage, input, batch, stage->sample_input_shape)), output,
                     output_count);
    })
}

int mpp_stage_create_script(const char* path, int first, int count, const int64_t* sample_shape, int sample_rank,
                            const char* device, mpp_stage** stage_out) {
    MPP_GUARDED({
        MPP_REQUIRE(stage_out != nullptr, "null output pointer");
        *stage_out = nullptr;
        MPP_REQUIRE(path != nullptr && device != nullptr, "null path or device");
        const auto input_shape = checked_sample_shape(sample_shape, sample_rank);
        const auto parsed_device = parse_device(device);
        auto built = mpp::build_script_model(path, first, count, input_shape, parsed_device);
        *stage_out = finish_stage(std::move(built), input_shape, parsed_device).release();
    })
}

}  // extern "C"

extern "C" {

int mpp_stage_buffer_count(mpp_stage* stage, int64_t* count) {
    MPP_GUARDED({
        MPP_REQUIRE(count != nullptr, "null output pointer");
        int64_t total = 0;
        for (const auto& buffer : float_buffers(checked(stage))) total += buffer.numel();
        *count = total;
    })
}

int mpp_stage_get_buffers(mpp_stage* stage, float* values, int64_t count) {
    MPP_GUARDED({
        checked_buffer_count(checked(stage), count);
        MPP_REQUIRE(values != nullptr || count == 0, "null values");
        int64_t offset = 0;
        for (const auto& buffer : float_buffers(stage)) {
            auto host = buffer.detach().to(torch::kCPU, torch::kFloat32).contiguous();
            std::memcpy(values + offset, host.data_ptr<float>(), static_cast<size_t>(host.numel()) * sizeof(float));
            offset += host.numel();
        }
    })
}

int mpp_stage_set_buffers(mpp_stage* stage, const float* values, int64_t count) {
    MPP_GUARDED({
        checked_buffer_count(checked(stage), count);
        MPP_REQUIRE(values != nullptr || count == 0, "null values");
        torch::NoGradGuard no_grad;
        int64_t offset = 0;
        for (auto& buffer : float_buffers(stage)) {
            auto source = torch::from_blob(const_cast<float*>(values + offset), buffer.sizes(), torch::kFloat32);
            buffer.copy_(source);
            offset += buffer.numel();
        }
    })
}

}  // extern "C"
