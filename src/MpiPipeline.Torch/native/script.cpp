// TorchScript modules: a module saved by PyTorch (torch.jit.script(m).save(path)) loaded with torch::jit::load and
// wrapped as the layers of a stage. The wrappers register the module's own parameter and buffer tensors (the same
// TensorImpls, not copies), so the stage's flat buffers become the storage the TorchScript code reads, and BatchNorm
// running statistics, updated in place by the module's forward, stay the module's.
#include "bridge.h"

#include <torch/script.h>

#include <fstream>
#include <sstream>

namespace {

using mpp::InputError;
using mpp::shape_text;

// What nn.Sequential scripts to: its children run one after the other, so it can be cut between them.
bool is_sequential(const torch::jit::Module& module) {
    const auto name = module.type()->name();
    return name && name->name() == "Sequential" &&
           name->qualifiedName().find("torch.nn.modules.container") != std::string::npos;
}

std::string type_name(const torch::jit::Module& module) {
    const auto name = module.type()->name();
    return name ? name->name() : std::string("module");
}

// The last line of a TorchScript interpreter error ("RuntimeError: ... expected input[1, 3, 32, 32] to have 1
// channels, but got 3 channels instead") says what went wrong; the lines above it are the serialized code's traceback.
std::string last_line(const std::string& text) {
    std::istringstream lines(text);
    std::string line, last;
    while (std::getline(lines, line)) {
        if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
    }
    const auto start = last.find_first_not_of(" \t");
    last = start == std::string::npos ? text : last.substr(start);
    const std::string prefix = "RuntimeError: ";
    return last.rfind(prefix, 0) == 0 ? last.substr(prefix.size()) : last;
}

// Parameter and buffer names in nn::Module must not contain '.'; "layer1.0.weight" becomes "layer1:0:weight".
std::string flat_name(std::string name) {
    for (auto& c : name) {
        if (c == '.') c = ':';
    }
    return name;
}

// One part of a TorchScript module (a child of a Sequential, or the whole module) as an nn::Module of a stage.
class ScriptPartImpl : public torch::nn::Module {
public:
    ScriptPartImpl(torch::jit::Module module, std::string description)
        : module_(std::move(module)), description_(std::move(description)) {
        for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
            // A parameter the file saved with requires_grad=False is frozen: kept, never trained.
            if (p.value.requires_grad()) {
                register_parameter(flat_name(p.name), p.value);
            } else {
                register_buffer(flat_name(p.name), p.value);
            }
        }
        for (const auto& b : module_.named_buffers(/*recurse=*/true)) register_buffer(flat_name(b.name), b.value);
    }

    torch::Tensor forward(torch::Tensor x) {
        auto y = module_.forward({std::move(x)});
        if (!y.isTensor()) {
            throw InputError(description_ + ": forward returns " + y.tagKind() + ", not one tensor");
        }
        return y.toTensor();
    }

    // The TorchScript code reads the module's own `training` attributes (dropout, BatchNorm).
    void train(bool on) override {
        module_.train(on);
        torch::nn::Module::train(on);
    }

private:
    torch::jit::Module module_;
    std::string description_;
};
TORCH_MODULE(ScriptPart);

struct LoadedScript {
    torch::jit::Module root;
    std::vector<torch::jit::Module> parts;
    std::vector<std::string> part_types;
    bool sequential = false;
};

LoadedScript load(const std::string& path, const torch::Device& device) {
    MPP_REQUIRE(std::ifstream(path).good(), "TorchScript file " + path + " not found (or not readable)");
    LoadedScript loaded;
    try {
        loaded.root = torch::jit::load(path, device);
    } catch (const std::exception& e) {
        const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
        throw InputError(path + " is not a TorchScript module (write one with torch.jit.script(model).save(path); a "
                         "torch.save file or a module from another PyTorch version may not load): " +
                         last_line(torch_error ? torch_error->what_without_backtrace() : e.what()));
    }
    loaded.sequential = is_sequential(loaded.root);
    if (loaded.sequential) {
        for (const auto& child : loaded.root.named_children()) {
            loaded.parts.push_back(child.value);
            loaded.part_types.push_back(child.name + " " + type_name(child.value));
        }
        MPP_REQUIRE(!loaded.parts.empty(), path + " is an empty nn.Sequential");
    } else {
        loaded.parts.push_back(loaded.root);
        loaded.part_types.push_back(type_name(loaded.root));
    }
    return loaded;
}

// Runs one sample through the parts in turn (eval mode, no graph): the shapes they give, or an InputError naming the
// shape a part did not take (TorchScript keeps no input shape; running one sample is the only check).
std::vector<std::vector<int64_t>> probe_shapes(const std::string& path, std::vector<ScriptPart>& parts,
                                               const std::vector<std::string>& types, int first,
                                               const std::vector<int64_t>& sample_shape, const torch::Device& device) {
    torch::NoGradGuard no_grad;
    std::vector<int64_t> shape{1};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    auto x = torch::zeros(shape, torch::TensorOptions().device(device));
    std::vector<std::vector<int64_t>> outputs;
    for (size_t i = 0; i < parts.size(); i++) {
        parts[i]->train(false);
        const auto input = x.sizes().vec();
        try {
            x = parts[i]->forward(x);
        } catch (const InputError&) {
            throw;
        } catch (const std::exception& e) {
            // The interpreter rethrows an operator's c10::Error as a plain std::runtime_error with its traceback.
            const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
            const auto where = types.size() == 1 ? std::string("the module") : "part " + types[first + i];
            throw InputError("the TorchScript module " + path + " does not take samples of shape " +
                             shape_text(std::vector<int64_t>(input.begin() + 1, input.end())) + " (" + where +
                             " failed on one: " +
                             last_line(torch_error ? torch_error->what_without_backtrace() : e.what()) + ")");
        }
        parts[i]->train(true);
        MPP_REQUIRE(x.dim() >= 1 && x.size(0) == 1,
                    "the TorchScript module " + path + ": part " + types[first + i] + " turned a batch of 1 into " +
                        shape_text(x.sizes().vec()) + " (the first dimension must stay the batch)");
        MPP_REQUIRE(x.scalar_type() == torch::kFloat32,
                    "the TorchScript module " + path + ": part " + types[first + i] + " returns " +
                        std::string(c10::toString(x.scalar_type())) + ", not float32");
        outputs.push_back(std::vector<int64_t>(x.sizes().begin() + 1, x.sizes().end()));
    }
    return outputs;
}

thread_local std::string inspect_names;

}  // namespace

namespace mpp {

BuiltModel build_script_model(const std::string& path, int first, int count,
                              const std::vector<int64_t>& sample_input_shape, const torch::Device& device) {
    auto loaded = load(path, device);
    const auto total = static_cast<int>(loaded.parts.size());
    MPP_REQUIRE(first >= 0 && count >= 1 && first + count <= total,
                "parts " + std::to_string(first) + " to " + std::to_string(first + count - 1) + " of " + path +
                    ": it has " + std::to_string(total) + " part" + (total == 1 ? "" : "s") +
                    (loaded.sequential ? " (the children of its nn.Sequential)" : " (it is not an nn.Sequential)"));
    std::vector<ScriptPart> parts;
    for (int i = first; i < first + count; i++) {
        parts.emplace_back(loaded.parts[i], path + " part " + loaded.part_types[i]);
    }
    const auto shapes = probe_shapes(path, parts, loaded.part_types, first, sample_input_shape, device);
    BuiltModel built;
    std::ostringstream summary;
    summary << "input " << shape_text(sample_input_shape) << "  (TorchScript " << path << ")\n";
    for (int i = 0; i < count; i++) {
        int64_t parameters = 0;
        for (const auto& p : parts[i]->parameters()) parameters += p.numel();
        summary << "part " << loaded.part_types[first + i] << "  -> " << shape_text(shapes[i]) << "  params "
                << parameters << '\n';
        built.model->push_back(parts[i]);
    }
    built.sample_output_shape = shapes.back();
    built.summary = summary.str();
    return built;
}

}  // namespace mpp

extern "C" {

int mpp_script_inspect(const char* path, const int64_t* sample_shape, int sample_rank, int* parts, int* sequential,
                       int64_t* parameters, int64_t* output_dims, int output_capacity, int* output_rank,
                       const char** names) {
    MPP_GUARDED({
        MPP_REQUIRE(path != nullptr, "null path");
        MPP_REQUIRE(parts != nullptr && sequential != nullptr && parameters != nullptr && output_rank != nullptr &&
                        names != nullptr && (output_dims != nullptr || output_capacity == 0),
                    "null output pointer");
        MPP_REQUIRE(sample_rank >= 0 && sample_rank <= 8 && (sample_shape != nullptr || sample_rank == 0),
                    "the sample shape needs 0 to 8 dimensions, got " + std::to_string(sample_rank));
        const torch::Device cpu(torch::kCPU);
        auto loaded = load(path, cpu);
        int64_t trainable = 0;
        for (const auto& p : loaded.root.parameters(/*recurse=*/true)) {
            if (p.requires_grad()) trainable += p.numel();
        }
        *output_rank = 0;
        if (sample_rank > 0) {
            std::vector<int64_t> shape(sample_shape, sample_shape + sample_rank);
            std::vector<ScriptPart> wrapped;
            for (size_t i = 0; i < loaded.parts.size(); i++) {
                wrapped.emplace_back(loaded.parts[i], std::string(path) + " part " + loaded.part_types[i]);
            }
            const auto output = probe_shapes(path, wrapped, loaded.part_types, 0, shape, cpu).back();
            *output_rank = static_cast<int>(output.size());
            for (int i = 0; i < output_capacity && i < static_cast<int>(output.size()); i++) output_dims[i] = output[i];
        }
        std::ostringstream text;
        for (const auto& type : loaded.part_types) text << type << '\n';
        inspect_names = text.str();
        *parts = static_cast<int>(loaded.parts.size());
        *sequential = loaded.sequential ? 1 : 0;
        *parameters = trainable;
        *names = inspect_names.c_str();
    })
}

}  // extern "C"
