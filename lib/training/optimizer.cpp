// optimizer.cpp -- AdamW with checkpointable state.
#include "training/optimizer.hpp"

#include <torch/torch.h>

#include <cmath>

#include "core/error.hpp"

namespace treerpo::training {
namespace {
std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }
}  // namespace

Optimizer::Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params, const AdamWSettings& s,
                     const OptimizerState& state)
    : params_(std::move(params)) {
  if (params_.empty()) throw UsageError("no trainable parameters");
  for (const auto& [name, p] : params_) tensors_.push_back(p);
  adamw_ = std::make_unique<torch::optim::AdamW>(
      tensors_, torch::optim::AdamWOptions(s.lr).betas(std::make_tuple(s.beta1, s.beta2)).weight_decay(s.weight_decay).eps(1e-8));
  for (const auto& [name, p] : params_) {  // resume: the exact moments and step counts
    auto a = state.tensors.find("optimizer." + name + ".exp_avg");
    auto b = state.tensors.find("optimizer." + name + ".exp_avg_sq");
    auto n = state.tensors.find("optimizer." + name + ".step");
    if (a == state.tensors.end() || b == state.tensors.end() || n == state.tensors.end()) continue;
    auto ps = std::make_unique<torch::optim::AdamWParamState>();
    ps->step(n->second.item<std::int64_t>());
    ps->exp_avg(a->second.to(p.device(), p.scalar_type()).clone());
    ps->exp_avg_sq(b->second.to(p.device(), p.scalar_type()).clone());
    adamw_->state()[state_key(p)] = std::move(ps);
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() { adamw_->zero_grad(); }

void Optimizer::set_lr(double lr) {
  for (auto& g : adamw_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

double Optimizer::clip_grad_norm(double max_norm) {
  return torch::nn::utils::clip_grad_norm_(tensors_, max_norm > 0 ? max_norm : INFINITY);
}

void Optimizer::step() { adamw_->step(); }

OptimizerState Optimizer::state(std::int64_t steps_done) const {
  OptimizerState out;
  out.step = steps_done;
  for (const auto& [name, p] : params_) {
    auto it = adamw_->state().find(state_key(p));
    if (it == adamw_->state().end()) continue;
    const auto& ps = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.tensors["optimizer." + name + ".exp_avg"] = ps.exp_avg();
    out.tensors["optimizer." + name + ".exp_avg_sq"] = ps.exp_avg_sq();
    out.tensors["optimizer." + name + ".step"] = torch::tensor(ps.step(), torch::kLong);
  }
  return out;
}

}  // namespace treerpo::training
