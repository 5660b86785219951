// torchscript_policy.hpp -- a TorchScript module as a policy: the signature a user gets by
// tracing a diffusers transformer behind a small wrapper,
//   forward(latents [B,C,H,W], timestep [B], encoder_hidden_states [B,L,D][, pooled [B,D]]) -> [B,C,H,W]
// with a declared timestep convention (sigma or 1000 sigma) and output sign.
#pragma once
#include <torch/script.h>

#include "model/policy.hpp"

namespace treerpo::model {

class TorchScriptPolicy : public Policy {
 public:
  /// \throws NoInputError, DataError (not a TorchScript archive, no forward, bad attributes)
  TorchScriptPolicy(const std::string& path, const PolicyOptions& options);

  std::string kind() const override { return "torchscript"; }
  torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c) override;
  Conditioning encode(const std::vector<std::string>& prompts) const override;
  bool reads_text() const override { return false; }
  Conditioning null_conditioning(std::int64_t batch, const Conditioning& like) const override;
  std::vector<std::int64_t> latent_shape() const override { return latent_shape_; }
  void place(const Placement& placement) override;
  Placement placement() const override { return placement_; }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const override;
  /// Saves the whole module (with its current weights) as a TorchScript archive; `extra`
  /// tensors go to "<path>.extra.safetensors".
  void save(const std::string& path, bool force, const std::map<std::string, torch::Tensor>& extra = {},
            const std::map<std::string, std::string>& metadata = {}) const override;

  bool timestep_is_1000_sigma() const { return timestep_1000_; }
  bool negates_output() const { return negate_; }

 private:
  std::string path_;
  mutable torch::jit::Module module_;
  Placement placement_;
  bool timestep_1000_ = false;
  bool negate_ = false;
  bool takes_pooled_ = false;
  std::vector<std::int64_t> latent_shape_;
};

}  // namespace treerpo::model
