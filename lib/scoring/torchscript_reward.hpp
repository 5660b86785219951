// torchscript_reward.hpp -- TorchScript modules in the scoring stage: a reward model
// (images -> one score each) and a decoder for latent-space policies (latents -> images).
#pragma once
#include <torch/script.h>

#include <string>
#include <vector>

#include "model/policy.hpp"

namespace treerpo::scoring {

/// forward(images [B, 3, H, W] float32 in [0, 1]) -> [B] (or [B, 1]); a module whose forward
/// takes more arguments also gets the prompts' embeddings: (images, encoder_hidden_states
/// [B, L, D][, pooled [B, D]]).
class TorchScriptReward {
 public:
  /// \throws NoInputError, DataError (not a TorchScript archive, no forward)
  TorchScriptReward(const std::string& path, const torch::Device& device);
  /// Arguments forward takes besides self (1 = images only).
  std::size_t arity() const { return arity_; }
  /// Scores uint8 images [B, H, W, 3]. \throws DataError naming the module for a wrong output shape
  std::vector<double> score(const torch::Tensor& images, const model::Conditioning& cond);

 private:
  std::string path_;
  torch::jit::Module module_;
  torch::Device device_;
  std::size_t arity_ = 1;
};

/// forward(latents [B, C, h, w] float32) -> images [B, 3, H, W] in [-1, 1] (a VAE decoder).
class TorchScriptDecoder {
 public:
  /// \throws NoInputError, DataError
  TorchScriptDecoder(const std::string& path, const torch::Device& device);
  /// Returns uint8 images [B, H, W, 3]. \throws DataError naming the module for a wrong output
  torch::Tensor decode(const torch::Tensor& latents);

 private:
  std::string path_;
  torch::jit::Module module_;
  torch::Device device_;
};

}  // namespace treerpo::scoring
