// optimizer.hpp -- the AdamW optimizer every objective of `update` shares, and the state a
// checkpoint carries so that training resumes exactly (moments and step counts per parameter).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch::optim {
class AdamW;
}

namespace treerpo::training {

/// The training state that checkpoints carry besides the weights.
struct OptimizerState {
  std::int64_t step = 0;                              ///< optimizer steps done
  std::map<std::string, torch::Tensor> tensors;       ///< "optimizer.<param>.exp_avg" / ".exp_avg_sq" / ".step"
};

struct AdamWSettings {
  double lr = 1e-4;
  double weight_decay = 1e-4;
  double beta1 = 0.9, beta2 = 0.999;
};

/// AdamW over named parameters, its moments restored from `state` where present. Parameters
/// held in bfloat16 or float16 are optimised through float32 master copies (kept in the state as
/// "optimizer.<param>.master"), so that steps smaller than their precision accumulate.
class Optimizer {
 public:
  Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params, const AdamWSettings& settings,
            const OptimizerState& state);
  ~Optimizer();
  void zero_grad();
  void set_lr(double lr);
  /// Clips the global gradient norm to `max_norm` (0 = no clipping) and returns the norm before.
  double clip_grad_norm(double max_norm);
  void step();
  const std::vector<torch::Tensor>& parameters() const { return tensors_; }
  /// Moments and step counts by parameter name, for the checkpoint.
  OptimizerState state(std::int64_t steps_done) const;

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> tensors_;    ///< the policy's parameters
  std::vector<torch::Tensor> optimized_;  ///< what AdamW updates: the parameter, or its float32 master
  bool has_masters_ = false;
  std::unique_ptr<torch::optim::AdamW> adamw_;
};

}  // namespace treerpo::training
