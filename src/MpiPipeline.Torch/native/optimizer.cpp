// Optimizers on a stage's flat buffers, with torch ops, following torch.optim's single-tensor formulas
// (torch/optim/sgd.py and adam.py, maximize=False, amsgrad=False).
#include "bridge.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

struct mpp_optimizer {
    virtual ~mpp_optimizer() = default;
    virtual void step() = 0;
    // The state a checkpoint carries: flat tensors of the parameters' length, and a step counter.
    virtual std::vector<torch::Tensor*> state() = 0;
    virtual int64_t step_count() const { return 0; }
    virtual void set_state(int tensors, const float* values, int64_t count, int64_t step_count) = 0;
    // References to the stage's device flat tensors: the storage stays alive even if the stage goes first.
    torch::Tensor parameters;
    torch::Tensor gradients;
    double lr = 0;
};

namespace {

// A host copy of count floats as a tensor of the parameters' dtype and device.
torch::Tensor from_host(const torch::Tensor& like, const float* values, int64_t count) {
    auto host = torch::from_blob(const_cast<float*>(values), {count}, torch::kFloat32).clone();
    return host.to(like.device(), like.scalar_type());
}

void check_finite_non_negative(double value, const char* name) {
    MPP_REQUIRE(std::isfinite(value) && value >= 0,
                std::string("the ") + name + " must be a finite number >= 0, got " + std::to_string(value));
}

struct Sgd final : mpp_optimizer {
    double momentum = 0, dampening = 0, weight_decay = 0;
    bool nesterov = false;
    torch::Tensor momentum_buffer;  // undefined until the first step

    void step() override {
        torch::NoGradGuard no_grad;
        auto d_p = gradients;
        if (weight_decay != 0) d_p = d_p.add(parameters, weight_decay);  // g + lambda * theta
        if (momentum != 0) {
            if (!momentum_buffer.defined()) {
                momentum_buffer = d_p.clone();  // first step: b = g
            } else {
                momentum_buffer.mul_(momentum).add_(d_p, 1 - dampening);  // b = mu * b + (1 - tau) * g
            }
            d_p = nesterov ? d_p.add(momentum_buffer, momentum) : momentum_buffer;  // g + mu * b, or b
        }
        parameters.add_(d_p, -lr);  // theta = theta - lr * d_p
    }

    std::vector<torch::Tensor*> state() override {
        if (momentum_buffer.defined()) return {&momentum_buffer};
        return {};
    }

    void set_state(int tensors, const float* values, int64_t count, int64_t step_count) override {
        MPP_REQUIRE(tensors == 0 || (tensors == 1 && momentum != 0),
                    "SGD takes 0 state tensors, or 1 (the momentum buffer) with momentum; got " + std::to_string(tensors));
        MPP_REQUIRE(step_count == 0, "SGD keeps no step counter; got " + std::to_string(step_count));
        momentum_buffer = tensors == 1 ? from_host(parameters, values, count) : torch::Tensor();
    }
};

struct Adam final : mpp_optimizer {
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
    int64_t step_count_ = 0;
    torch::Tensor exp_avg, exp_avg_sq;

    void step() override {
        torch::NoGradGuard no_grad;
        step_count_++;
        auto grad = gradients;
        if (weight_decay != 0) grad = grad.add(parameters, weight_decay);  // L2, as torch.optim.Adam
        exp_avg.mul_(beta1).add_(grad, 1 - beta1);                          // m = b1 m + (1 - b1) g
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);             // v = b2 v + (1 - b2) g^2
        const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(step_count_));
        const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(step_count_));
        const double step_size = lr / bias_correction1;
        const double bias_correction2_sqrt = std::sqrt(bias_correction2);
        auto denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);  // sqrt(v / (1 - b2^t)) + eps
        parameters.addcdiv_(exp_avg, denom, -step_size);                     // theta -= lr / (1 - b1^t) * m / denom
    }

    std::vector<torch::Tensor*> state() override { return {&exp_avg, &exp_avg_sq}; }

    int64_t step_count() const override { return step_count_; }

    void set_state(int tensors, const float* values, int64_t count, int64_t steps) override {
        MPP_REQUIRE(tensors == 2, "Adam takes 2 state tensors (exp_avg, exp_avg_sq); got " + std::to_string(tensors));
        MPP_REQUIRE(steps >= 0, "the step counter must be >= 0; got " + std::to_string(steps));
        exp_avg = from_host(parameters, values, count);
        exp_avg_sq = from_host(parameters, values + count, count);
        step_count_ = steps;
    }
};

void attach(mpp_optimizer& optimizer, mpp_stage* stage, double lr) {
    MPP_REQUIRE(stage != nullptr, "null stage");
    check_finite_non_negative(lr, "learning rate");
    optimizer.parameters = stage->flat_parameters;
    optimizer.gradients = stage->flat_gradients;
    optimizer.lr = lr;
}

}  // namespace

extern "C" {

int mpp_optimizer_create_sgd(mpp_stage* stage, double lr, double momentum, double dampening, int nesterov,
                             double weight_decay, mpp_optimizer** optimizer_out) {
    MPP_GUARDED({
        MPP_REQUIRE(optimizer_out != nullptr, "null output pointer");
        *optimizer_out = nullptr;
        auto sgd = std::make_unique<Sgd>();
        attach(*sgd, stage, lr);
        check_finite_non_negative(momentum, "momentum");
        check_finite_non_negative(dampening, "dampening");
        check_finite_non_negative(weight_decay, "weight decay");
        MPP_REQUIRE(!nesterov || (momentum > 0 && dampening == 0),
                    "Nesterov momentum requires a momentum > 0 and zero dampening (as torch.optim.SGD)");
        sgd->momentum = momentum;
        sgd->dampening = dampening;
        sgd->nesterov = nesterov != 0;
        sgd->weight_decay = weight_decay;
        *optimizer_out = sgd.release();
    })
}

int mpp_optimizer_create_adam(mpp_stage* stage, double lr, double beta1, double beta2, double eps,
                              double weight_decay, mpp_optimizer** optimizer_out) {
    MPP_GUARDED({
        MPP_REQUIRE(optimizer_out != nullptr, "null output pointer");
        *optimizer_out = nullptr;
        auto adam = std::make_unique<Adam>();
        attach(*adam, stage, lr);
        MPP_REQUIRE(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1), got " + std::to_string(beta1));
        MPP_REQUIRE(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1), got " + std::to_string(beta2));
        check_finite_non_negative(eps, "epsilon");
        check_finite_non_negative(weight_decay, "weight decay");
        adam->beta1 = beta1;
        adam->beta2 = beta2;
        adam->eps = eps;
        adam->weight_decay = weight_decay;
        adam->exp_avg = torch::zeros_like(adam->parameters);
        adam->exp_avg_sq = torch::zeros_like(adam->parameters);
        *optimizer_out = adam.release();
    })
}

int mpp_optimizer_set_lr(mpp_optimizer* optimizer, double lr) {
    MPP_GUARDED({
        MPP_REQUIRE(optimizer != nullptr, "null optimizer");
        check_finite_non_negative(lr, "learning rate");
        optimizer->lr = lr;
    })
}

int mpp_optimizer_step(mpp_optimizer* optimizer) {
    MPP_GUARDED({
        MPP_REQUIRE(optimizer != nullptr, "null optimizer");
        optimizer->step();
    })
}

int mpp_optimizer_destroy(mpp_optimizer* optimizer) {
    MPP_GUARDED({ delete optimizer; })
}

int mpp_optimizer_state_info(mpp_optimizer* optimizer, int* tensors, int64_t* step_count) {
    MPP_GUARDED({
        MPP_REQUIRE(optimizer != nullptr, "null optimizer");
        MPP_REQUIRE(tensors != nullptr && step_count != nullptr, "null output pointer");
        *tensors = static_cast<int>(optimizer->state().size());
        *step_count = optimizer->step_count();
    })
}

int mpp_optimizer_get_state(mpp_optimizer* optimizer, int index, float* values, int64_t count) {
    MPP_GUARDED({
        MPP_REQUIRE(optimizer != nullptr, "null optimizer");
        MPP_REQUIRE(values != nullptr, "null values");
        auto state = optimizer->state();
        MPP_REQUIRE(index >= 0 && index < static_cast<int>(state.size()),
                    "state tensor " + std::to_string(index) + " of " + std::to_string(state.size()));
        MPP_REQUIRE(count == optimizer->parameters.numel(),
                    "count " + std::to_string(count) + " is not the parameter count " +
                        std::to_string(optimizer->parameters.numel()));
        auto host = state[index]->detach().to(torch::kCPU, torch::kFloat32).contiguous();
        std::memcpy(values, host.data_ptr<float>(), static_cast<size_t>(count) * sizeof(float));
    })
}

int mpp_optimizer_set_state(mpp_optimizer* optimizer, int tensors, const float* values, int64_t count,
                            int64_t step_count) {
    MPP_GUARDED({
        MPP_REQUIRE(optimizer != nullptr, "null optimizer");
        MPP_REQUIRE(tensors >= 0 && (tensors == 0 || values != nullptr), "null values");
        MPP_REQUIRE(count == optimizer->parameters.numel(),
                    "count " + std::to_string(count) + " is not the parameter count " +
                        std::to_string(optimizer->parameters.numel()));
        torch::NoGradGuard no_grad;
        optimizer->set_state(tensors, values, count, step_count);
    })
}

}  // extern "C"
