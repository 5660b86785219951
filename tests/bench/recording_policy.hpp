// recording_policy.hpp -- for benchmarks: a policy that forwards to another and records the batch
// size of every model call, so that the same shapes can be replayed through the model alone.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "model/policy.hpp"

namespace treerpo::bench {

class RecordingPolicy : public model::Policy {
 public:
  /// `with_grad_only`: record only calls made with gradients on (the training passes).
  explicit RecordingPolicy(model::Policy& inner, bool with_grad_only = false)
      : inner_(inner), with_grad_only_(with_grad_only) {}
  std::string kind() const override { return inner_.kind(); }
  torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& s, const model::Conditioning& c) override {
    if (!with_grad_only_ || torch::GradMode::is_enabled()) batches.push_back(x.size(0));
    return inner_.velocity(x, s, c);
  }
  model::Conditioning encode(const std::vector<std::string>& p) const override { return inner_.encode(p); }
  bool reads_text() const override { return true; }
  model::Conditioning null_conditioning(std::int64_t b, const model::Conditioning& l) const override {
    return inner_.null_conditioning(b, l);
  }
  std::vector<std::int64_t> latent_shape() const override { return inner_.latent_shape(); }
  void place(const model::Placement& p) override { inner_.place(p); }
  model::Placement placement() const override { return inner_.placement(); }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const override { return inner_.named_parameters(); }
  void save(const std::string&, bool, const std::map<std::string, torch::Tensor>&,
            const std::map<std::string, std::string>&) const override {}
  std::vector<std::int64_t> batches;

 private:
  model::Policy& inner_;
  bool with_grad_only_;
};

}  // namespace treerpo::bench
