// Layer specs: the text format, per-layer argument and shape checks, and the modules they become.
#include "bridge.h"

#include <cctype>
#include <sstream>

namespace {

using mpp::InputError;
using mpp::LayerSpec;
using mpp::shape_text;
using Shape = std::vector<int64_t>;

const char* const known_kinds =
    "linear, conv2d, relu, tanh, gelu, sigmoid, maxpool2d, avgpool2d, adaptiveavgpool2d, flatten, dropout, batchnorm, "
    "layernorm, residual";

// body(x) + x, or body(x) + shortcut(x) when the block changes the shape (a downsampling ResNet block's 1x1 conv):
// the body and the shortcut must give the same shape.
struct ResidualImpl : torch::nn::Module {
    ResidualImpl(torch::nn::Sequential body_, std::optional<torch::nn::Sequential> shortcut_)
        : body(register_module("body", std::move(body_))) {
        if (shortcut_) shortcut = register_module("shortcut", std::move(*shortcut_));
    }
    torch::Tensor forward(torch::Tensor x) {
        auto y = body->forward(x);
        return shortcut ? y + shortcut->forward(x) : y + x;
    }
    torch::nn::Sequential body;
    torch::nn::Sequential shortcut{nullptr};
};
TORCH_MODULE(Residual);

// ---- parsing --------------------------------------------------------------------------------------------------

class SpecParser {
public:
    explicit SpecParser(const std::string& text) : text_(text) {}

    std::vector<LayerSpec> parse() {
        auto layers = parse_list(0);
        if (pos_ < text_.size()) fail_at("unexpected '" + std::string(1, text_[pos_]) + "'");
        return layers;
    }

private:
    std::vector<LayerSpec> parse_list(int depth) {
        std::vector<LayerSpec> layers;
        while (true) {
            layers.push_back(parse_layer(depth));
            if (pos_ < text_.size() && text_[pos_] == ';') {
                pos_++;
                continue;
            }
            return layers;
        }
    }

    LayerSpec parse_layer(int depth) {
        auto start = pos_;
        while (pos_ < text_.size() && text_[pos_] != ';' && text_[pos_] != '{' && text_[pos_] != '}') pos_++;
        LayerSpec layer;
        std::istringstream words(text_.substr(start, pos_ - start));
        std::string word;
        if (!(words >> layer.kind)) fail_at("an empty layer (nothing between separators)");
        while (words >> word) {
            size_t used = 0;
            int64_t value = 0;
            try {
                value = std::stoll(word, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != word.size()) {
                throw InputError("layer '" + layer.kind + "': argument '" + word + "' is not an integer");
            }
            layer.args.push_back(value);
        }
        if (pos_ < text_.size() && text_[pos_] == '{') {
            if (depth >= 16) fail_at("residual blocks nested deeper than 16");
            pos_++;
            layer.body = parse_list(depth + 1);
            if (pos_ >= text_.size() || text_[pos_] != '}') fail_at("a '{' without its '}'");
            pos_++;
            if (pos_ < text_.size() && text_[pos_] == '{') {
                pos_++;
                layer.shortcut = parse_list(depth + 1);
                if (pos_ >= text_.size() || text_[pos_] != '}') fail_at("a '{' without its '}'");
                pos_++;
            }
            if (layer.kind != "residual") {
                throw InputError("layer '" + layer.kind + "' takes no body in braces (only residual does)");
            }
        }
        layer.text = text_.substr(start, pos_ - start);
        while (!layer.text.empty() && std::isspace(static_cast<unsigned char>(layer.text.back()))) layer.text.pop_back();
        while (!layer.text.empty() && std::isspace(static_cast<unsigned char>(layer.text.front()))) layer.text.erase(0, 1);
        return layer;
    }

    [[noreturn]] void fail_at(const std::string& what) const {
        throw InputError("layer spec \"" + text_ + "\", at character " + std::to_string(pos_) + ": " + what);
    }

    const std::string& text_;
    size_t pos_ = 0;
};

// ---- building -------------------------------------------------------------------------------------------------

struct Built {
    Shape output;
    std::vector<std::string> summary;
};

class LayerBuilder {
public:
    LayerBuilder(const LayerSpec& layer, std::string where, const Shape& input)
        : layer_(layer), where_(std::move(where)), input_(input) {}

    [[noreturn]] void fail(const std::string& what) const {
        throw InputError(where_ + " (" + layer_.text + "), input " + shape_text(input_) + " per sample: " + what);
    }

    void expect_args(size_t min, size_t max, const char* usage) const {
        if (layer_.args.size() < min || layer_.args.size() > max) {
            fail("takes " + (min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max)) +
                 " argument" + (max == 1 ? "" : "s") + " (" + usage + "), got " + std::to_string(layer_.args.size()));
        }
    }

    int64_t arg(size_t i, int64_t fallback) const { return i < layer_.args.size() ? layer_.args[i] : fallback; }

    void expect_rank(size_t rank, const char* what) const {
        if (input_.size() != rank) fail(std::string("needs ") + what);
    }

    void positive(int64_t value, const char* name) const {
        if (value <= 0) fail(std::string(name) + " must be positive, got " + std::to_string(value));
    }

    const LayerSpec& layer_;
    std::string where_;
    const Shape& input_;
};

int64_t pooled_size(const LayerBuilder& b, int64_t size, int64_t kernel, int64_t stride, int64_t padding) {
    auto out = (size + 2 * padding - kernel) / stride + 1;
    if (size + 2 * padding < kernel || out < 1) {
        b.fail("kernel " + std::to_string(kernel) + " does not fit a size of " + std::to_string(size) +
               " with padding " + std::to_string(padding));
    }
    return out;
}

int64_t parameter_count(torch::nn::Module& module) {
    int64_t count = 0;
    for (const auto& p : module.parameters()) count += p.numel();
    return count;
}

// Appends the modules for layers to model; returns the output shape; adds summary lines.
Shape append_layers(torch::nn::Sequential& model, const std::vector<LayerSpec>& layers, const Shape& input_shape,
                    const std::string& prefix, int indent, std::vector<std::string>& summary) {
    Shape shape = input_shape;
    for (size_t i = 0; i < layers.size(); i++) {
        const auto& layer = layers[i];
        const auto where = (prefix.empty() ? "layer " : prefix + ".") + std::to_string(i);
        LayerBuilder b(layer, where, shape);
        const auto& k = layer.kind;
        Shape out = shape;
        torch::nn::AnyModule module;
        std::vector<std::string> body_summary;
        if (k == "linear") {
            b.expect_args(2, 2, "in_features out_features");
            b.positive(layer.args[0], "in_features");
            b.positive(layer.args[1], "out_features");
            if (shape.size() != 1) {
                b.fail("linear needs a flat input (one dimension per sample); put a flatten before it");
            }
            if (shape[0] != layer.args[0]) {
                b.fail("linear expects " + std::to_string(layer.args[0]) + " input features, the layer before gives " +
                       std::to_string(shape[0]));
            }
            module = torch::nn::AnyModule(torch::nn::Linear(torch::nn::LinearOptions(layer.args[0], layer.args[1])));
            out = {layer.args[1]};
        } else if (k == "conv2d") {
            b.expect_args(3, 7, "in_channels out_channels kernel [stride] [padding] [groups] [bias 1|0]");
            const auto in = layer.args[0], channels = layer.args[1], kernel = layer.args[2];
            const auto stride = b.arg(3, 1), padding = b.arg(4, 0), groups = b.arg(5, 1), bias = b.arg(6, 1);
            b.positive(in, "in_channels");
            b.positive(channels, "out_channels");
            b.positive(kernel, "kernel");
            b.positive(stride, "stride");
            b.positive(groups, "groups");
            if (padding < 0) b.fail("padding must not be negative");
            if (in % groups != 0 || channels % groups != 0) {
                b.fail("groups " + std::to_string(groups) + " must divide both in_channels " + std::to_string(in) +
                       " and out_channels " + std::to_string(channels));
            }
            if (bias != 0 && bias != 1) b.fail("bias must be 1 (with) or 0 (without), got " + std::to_string(bias));
            b.expect_rank(3, "an image input [channels, height, width]");
            if (shape[0] != in) {
                b.fail("conv2d expects " + std::to_string(in) + " input channels, the input has " +
                       std::to_string(shape[0]));
            }
            module = torch::nn::AnyModule(torch::nn::Conv2d(
                torch::nn::Conv2dOptions(in, channels, kernel).stride(stride).padding(padding).groups(groups).bias(bias == 1)));
            out = {channels, pooled_size(b, shape[1], kernel, stride, padding),
                   pooled_size(b, shape[2], kernel, stride, padding)};
        } else if (k == "maxpool2d" || k == "avgpool2d") {
            b.expect_args(1, 3, "kernel [stride (default: kernel)] [padding]");
            const auto kernel = layer.args[0], stride = b.arg(1, kernel), padding = b.arg(2, 0);
            b.positive(kernel, "kernel");
            b.positive(stride, "stride");
            if (padding < 0 || 2 * padding > kernel) b.fail("padding must be between 0 and half the kernel");
            b.expect_rank(3, "an image input [channels, height, width]");
            if (k == "maxpool2d") {
                module = torch::nn::AnyModule(
                    torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(kernel).stride(stride).padding(padding)));
            } else {
                module = torch::nn::AnyModule(
                    torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(kernel).stride(stride).padding(padding)));
            }
            out = {shape[0], pooled_size(b, shape[1], kernel, stride, padding),
                   pooled_size(b, shape[2], kernel, stride, padding)};
        } else if (k == "adaptiveavgpool2d") {
            b.expect_args(1, 2, "out_height [out_width (default: out_height)]");
            const auto height = layer.args[0], width = b.arg(1, height);
            b.positive(height, "out_height");
            b.positive(width, "out_width");
            b.expect_rank(3, "an image input [channels, height, width]");
            module = torch::nn::AnyModule(
                torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({height, width})));
            out = {shape[0], height, width};
        } else if (k == "layernorm") {
            b.expect_args(0, 1, "[size of the last dimension: normalize over it only; none: over the whole sample]");
            Shape normalized = shape;
            if (!layer.args.empty()) {
                if (layer.args[0] != shape.back()) {
                    b.fail("layernorm " + std::to_string(layer.args[0]) + " does not match the input's last dimension " +
                           std::to_string(shape.back()));
                }
                normalized = {shape.back()};
            }
            module = torch::nn::AnyModule(torch::nn::LayerNorm(torch::nn::LayerNormOptions(normalized)));
        } else if (k == "relu" || k == "tanh" || k == "gelu" || k == "sigmoid" || k == "flatten") {
            b.expect_args(0, 0, "none");
            if (k == "sigmoid") module = torch::nn::AnyModule(torch::nn::Sigmoid());
            if (k == "relu") module = torch::nn::AnyModule(torch::nn::ReLU());
            if (k == "tanh") module = torch::nn::AnyModule(torch::nn::Tanh());
            if (k == "gelu") module = torch::nn::AnyModule(torch::nn::GELU());
            if (k == "flatten") {
                module = torch::nn::AnyModule(torch::nn::Flatten());
                out = {mpp::element_count(shape)};
            }
        } else if (k == "dropout") {
            b.expect_args(0, 1, "[percent dropped, default 50]");
            const auto percent = b.arg(0, 50);
            if (percent < 0 || percent > 100) b.fail("the percentage must be between 0 and 100");
            module = torch::nn::AnyModule(torch::nn::Dropout(torch::nn::DropoutOptions(percent / 100.0)));
        } else if (k == "batchnorm") {
            b.expect_args(0, 1, "[features or channels]");
            if (shape.size() != 1 && shape.size() != 2 && shape.size() != 3) {
                b.fail("batchnorm needs a flat input [features], [channels, length] or an image [channels, height, width]");
            }
            const auto features = shape[0];
            if (!layer.args.empty() && layer.args[0] != features) {
                b.fail("batchnorm " + std::to_string(layer.args[0]) + " does not match the input's " +
                       std::to_string(features) + (shape.size() == 1 ? " features" : " channels"));
            }
            if (shape.size() == 3) {
                module = torch::nn::AnyModule(torch::nn::BatchNorm2d(features));
            } else {
                module = torch::nn::AnyModule(torch::nn::BatchNorm1d(features));
            }
        } else if (k == "residual") {
            b.expect_args(0, 0,
                          "none; the body goes in braces: residual{linear 64 64;relu;linear 64 64}, a shortcut that "
                          "changes the shape in a second pair: residual{conv2d 16 32 3 2 1;relu}{conv2d 16 32 1 2}");
            if (layer.body.empty()) b.fail("residual needs a body: residual{...}");
            torch::nn::Sequential body;
            auto body_out = append_layers(body, layer.body, shape, where, indent + 1, body_summary);
            std::optional<torch::nn::Sequential> shortcut;
            auto shortcut_out = shape;
            if (!layer.shortcut.empty()) {
                shortcut.emplace();
                shortcut_out = append_layers(*shortcut, layer.shortcut, shape, where + ".shortcut", indent + 1,
                                             body_summary);
            }
            if (body_out != shortcut_out) {
                b.fail(layer.shortcut.empty()
                           ? "the residual body must keep the shape, it turns " + shape_text(shape) + " into " +
                                 shape_text(body_out) + " (a block that changes it needs a shortcut: residual{...}{...})"
                           : "the residual body gives " + shape_text(body_out) + " but the shortcut " +
                                 shape_text(shortcut_out) + "; both must give the same shape");
            }
            module = torch::nn::AnyModule(Residual(body, shortcut));
            out = body_out;
        } else {
            throw InputError(where + ": unknown layer kind '" + k + "' (known: " + known_kinds + ")");
        }
        if ((!layer.body.empty() || !layer.shortcut.empty()) && k != "residual") b.fail("only residual takes a body");
        model->push_back(module);
        std::ostringstream line;
        line << std::string(2 * indent, ' ') << where << "  " << layer.kind;
        for (auto a : layer.args) line << ' ' << a;
        line << "  -> " << shape_text(out) << "  params " << parameter_count(*module.ptr());
        summary.push_back(line.str());
        summary.insert(summary.end(), body_summary.begin(), body_summary.end());
        shape = out;
    }
    return shape;
}

}  // namespace

namespace mpp {

std::vector<LayerSpec> parse_layer_specs(const std::string& spec) {
    bool blank = true;
    for (char c : spec) blank = blank && std::isspace(static_cast<unsigned char>(c));
    if (blank) throw InputError("a stage needs at least one layer (the layer spec is empty)");
    return SpecParser(spec).parse();
}

BuiltModel build_model(const std::vector<LayerSpec>& layers, const std::vector<int64_t>& sample_input_shape) {
    BuiltModel built;
    std::vector<std::string> summary;
    built.sample_output_shape = append_layers(built.model, layers, sample_input_shape, "", 0, summary);
    std::ostringstream text;
    text << "input " << shape_text(sample_input_shape) << '\n';
    for (const auto& line : summary) text << line << '\n';
    built.summary = text.str();
    return built;
}

}  // namespace mpp
