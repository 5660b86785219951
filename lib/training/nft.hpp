// nft.hpp -- the negative-aware objective of `update --objective nft` (DiffusionNFT, Zheng et al.
// 2025), trained on the forward process: flow matching on the rollout's leaves, where each leaf's
// optimality r splits its regression between an implicit positive policy
// v+ = (1 - beta) v_old + beta v_theta and an implicit negative one v- = (1 + beta) v_old - beta v_theta.
// It needs only the leaves, their advantages and the velocity of the policy before the update:
// no log-probabilities, so any sampler's leaves will do.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/policy.hpp"
#include "training/grpo.hpp"

namespace treerpo::training {

/// The items of one update: each leaf with a finite advantage at `timesteps` keyed noise levels.
/// CPU tensors, one row per item.
struct NftItems {
  torch::Tensor x;           ///< [I, C, H, W] x_sigma = (1 - sigma) x0 + sigma e
  torch::Tensor sigma;       ///< [I]
  torch::Tensor target;      ///< [I, C, H, W] the flow-matching velocity e - x0
  torch::Tensor v_old;       ///< [I, C, H, W] the conditional velocity before the update (detached)
  torch::Tensor v_ref;       ///< [I, C, H, W] the reference's conditional velocity (with a KL term)
  torch::Tensor optimality;  ///< [I] r = (1 + clamp(A / scale, -1, 1)) / 2 of the item's leaf
  model::Conditioning cond;  ///< [I] the leaf's prompt
  std::int64_t size() const { return sigma.defined() ? sigma.size(0) : 0; }
};

/// Leaves with a finite advantage in the inputs, times `timesteps`. \throws DataError naming the file
std::int64_t count_nft_items(const std::vector<RlInput>& inputs, std::int64_t timesteps);

/// Builds the items: sigma drawn from the rollout's schedule and noise e, both keyed by (seed,
/// iteration, prompt id, the leaf's index within its prompt, draw), v_old from `policy` as it
/// is now and v_ref from `reference` (when given). \throws DataError naming the file (no
/// /advantages, no rewards)
NftItems nft_items(model::Policy& policy, model::Policy* reference, const std::vector<RlInput>& inputs,
                   const RlConfig& c);

/// Sum over the items `rows` (forward passes of at most `max_rows`) of r |v+ - u|^2 + (1 - r) |v- - u|^2, each a mean over elements;
/// differentiable in the policy's parameters. At v_theta = v_old its gradient is that of
/// 2 beta (2r - 1) <v_theta, v_old - u>: toward the positive leaves' targets, away from the negatives'.
/// `kl`, when the items have v_ref: the sum of the items' mean (v_theta - v_ref)^2, the KL term.
struct NftSums {
  torch::Tensor loss, kl;
};
NftSums nft_loss_sum(model::Policy& policy, const NftItems& items, const std::vector<std::int64_t>& rows,
                     double beta, std::int64_t max_rows);

}  // namespace treerpo::training
