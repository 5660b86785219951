// torchscript_policy.hpp -- a TorchScript module as a policy: the signature a user gets by
// tracing a diffusers transformer behind a small wrapper,
//   forward(latents [B,C,H,W], timestep [B], encoder_hidden_states [B,L,D][, pooled [B,D]]) -> [B,C,H,W]
// with a declared timestep convention (sigma or 1000 sigma) and output sign.
#pragma once
#include <torch/script.h>

#include "core/error.hpp"
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
  std::string timestep_convention() const override { return timestep_1000_ ? "1000sigma" : "sigma"; }
  std::string output_sign() const override { return negate_ ? "negative_velocity" : "velocity"; }
  /// Refuses embeddings of other sizes than the archive declares (treerpo_text_shape [L, D],
  /// treerpo_pooled_dim) and a missing pooled embedding that forward takes.
  void check_conditioning(const Conditioning& c, const std::string& source) const override;

 private:
  // One forward on zeros in the placement's dtype, when the archive declares its text shape:
  // a trace in float32 freezes .to(dtype) calls and fails in bfloat16 only when it runs.
  void check_forward_runs();
  torch::Tensor forward(std::vector<torch::jit::IValue> inputs);
  DataError forward_failure(const std::string& cause, const std::vector<torch::jit::IValue>& inputs) const;

  std::string path_;
  mutable torch::jit::Module module_;
  Placement placement_;
  bool timestep_1000_ = false;
  bool negate_ = false;
  bool takes_pooled_ = false;
  std::vector<std::int64_t> latent_shape_;
  std::vector<std::int64_t> text_shape_;  ///< [L, D] as declared, or empty
  std::int64_t pooled_dim_ = 0;           ///< as declared, or 0
};

}  // namespace treerpo::model
