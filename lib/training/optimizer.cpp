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
  for (const auto& [name, p] : params_) {
    tensors_.push_back(p);
    if (p.scalar_type() == torch::kFloat) {
      optimized_.push_back(p);
      continue;
    }
    // A float32 master copy: bfloat16 keeps 8 bits of mantissa, so most AdamW steps of size lr
    // round away when applied to the weights themselves (issue: 43 of 768 LoRA elements moved).
    auto m = state.tensors.find("optimizer." + name + ".master");
    optimized_.push_back(m != state.tensors.end() && m->second.sizes() == p.sizes()
                             ? m->second.to(p.device(), torch::kFloat).clone()
                             : p.detach().to(torch::kFloat).clone());
    has_masters_ = true;
  }
  adamw_ = std::make_unique<torch::optim::AdamW>(
      optimized_,
      torch::optim::AdamWOptions(s.lr).betas(std::make_tuple(s.beta1, s.beta2)).weight_decay(s.weight_decay).eps(1e-8));
  for (std::size_t i = 0; i < params_.size(); ++i) {  // resume: the exact moments and step counts
    const auto& name = params_[i].first;
    const auto& p = optimized_[i];
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

void Optimizer::zero_grad() {
  adamw_->zero_grad();
  if (has_masters_)
    for (auto& p : tensors_)
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void Optimizer::set_lr(double lr) {
  for (auto& g : adamw_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

double Optimizer::clip_grad_norm(double max_norm) {
  return torch::nn::utils::clip_grad_norm_(tensors_, max_norm > 0 ? max_norm : INFINITY);
}

void Optimizer::step() {
  if (!has_masters_) {
    adamw_->step();
    return;
  }
  for (std::size_t i = 0; i < tensors_.size(); ++i)
    if (optimized_[i].unsafeGetTensorImpl() != tensors_[i].unsafeGetTensorImpl())
      optimized_[i].mutable_grad() =
          tensors_[i].grad().defined() ? tensors_[i].grad().to(torch::kFloat) : torch::Tensor();
  adamw_->step();
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < tensors_.size(); ++i)
    if (optimized_[i].unsafeGetTensorImpl() != tensors_[i].unsafeGetTensorImpl()) tensors_[i].copy_(optimized_[i]);
}

OptimizerState Optimizer::state(std::int64_t steps_done) const {
  OptimizerState out;
  out.step = steps_done;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& name = params_[i].first;
    const auto& p = optimized_[i];
    if (p.unsafeGetTensorImpl() != params_[i].second.unsafeGetTensorImpl())
      out.tensors["optimizer." + name + ".master"] = p;
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
