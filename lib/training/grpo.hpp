// grpo.hpp -- the RL objective of `update` (ALGORITHM.md section 5): GRPO's clipped surrogate on
// the trainable edges of scored rollout trees with reward-conditioned clipping, the
// LayerTuning-RL supervised term (best-leaf, velocity or dataset target) with its lambda
// schedule, an optional KL to a frozen reference, PPO-style minibatches and epochs, the replay
// check, and data parallelism through a Communicator. Trajectories and tensors in, optimizer
// state and metrics out; no files, no CLI.
#pragma once
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/dataset_file.hpp"
#include "format/trajectory.hpp"
#include "model/policy.hpp"
#include "training/distributed.hpp"
#include "training/optimizer.hpp"

namespace treerpo::training {

/// One advantage-bearing trajectory file to train on.
struct RlInput {
  std::string name;                              ///< for messages
  const format::Trajectory* trajectory = nullptr;
};

/// GRPO alone, LayerTuning-RL (GRPO plus the weighted supervised term), or DiffusionNFT's
/// negative-aware flow matching on the leaves (training/nft.hpp).
enum class RlObjective { grpo, layertuning, nft };
/// What LayerTuning's supervised term regresses: the best leaf at every layer, the stored
/// velocities on its path, or a data set's pairs.
enum class SftTarget { best_leaf, velocity, dataset };
/// The best-leaf target's velocity: the conditional one, or the one under the rollout's guidance.
enum class SftVelocity { conditional, guided };
/// lambda_j across iterations.
enum class LambdaSchedule { constant, linear, cosine };

/// The names files and messages use ("layertuning", "best-leaf", ...).
const char* objective_name(RlObjective o);
const char* sft_target_name(SftTarget t);

struct RlConfig {
  RlObjective objective = RlObjective::layertuning;
  std::int64_t minibatch = 64;            ///< edges per minibatch, over all ranks together
  std::int64_t epochs = 1;                ///< passes over the edges
  std::int64_t grad_accum = 1;            ///< minibatches per optimizer step
  std::int64_t until = -1;                ///< stop after this many minibatches of the update (-1 = all)
  AdamWSettings adamw;
  double grad_clip = 1.0;                 ///< max global grad norm; 0 = off
  double clip_low = 1e-4, clip_high = 1e-4;  ///< e_low, e_high
  double eta = 0.5;                       ///< reward-conditioned clipping; 0 = fixed bounds
  double lambda = 0.1;                    ///< LayerTuning weight of this iteration (see lambda_at)
  SftTarget sft_target = SftTarget::best_leaf;
  std::vector<double> layer_weights;      ///< w_k per tree layer; empty = all 1
  bool advantage_weighting = true;        ///< weight the SFT term by the best leaf's normalised advantage
  std::int64_t sft_batch = 8;             ///< dataset target: pairs per minibatch
  double kl_weight = 0;                   ///< beta_kl; 0 = no reference term
  /// Guidance g != 1: train through the unconditional branch v_u of v_u + g (v_c - v_u) too.
  /// Off by default (Flow-GRPO detaches v_u): at g = 3 v_u would get a -2x gradient.
  bool train_uncond = false;
  /// Best-leaf target: regress the conditional velocity (as ALGORITHM.md writes it) or the
  /// velocity under the rollout's guidance, the one the best leaf was sampled with.
  SftVelocity sft_velocity = SftVelocity::conditional;
  double nft_beta = 1.0;                  ///< NFT: beta of the implicit policies v+- = v_old +- beta (v_theta - v_old)
  std::int64_t nft_timesteps = 4;         ///< NFT: keyed noise levels per leaf (4: README's sweep)
  double nft_scale = 5;                   ///< NFT: the advantage at which r reaches 1 (and -it, 0)
  std::int64_t max_rows = 256;            ///< model rows per forward pass
  std::uint64_t seed = 0;
  std::int64_t iteration = 0;             ///< j: keys the edge order and the SFT noise
};

/// lambda_j: constant lambda0, linear decay to 0 over `iterations`, or cosine decay over them.
double lambda_at(LambdaSchedule schedule, double lambda0, std::int64_t iterations, std::int64_t iteration);

/// GRPO's clipped surrogate per edge: max(-A rho, -A clip(rho, 1 - e_low g, 1 + e_high g)) with
/// rho = exp(log_prob - old_log_prob) and g = clamp(exp(eta A), 0.5, 2).
struct Surrogate {
  torch::Tensor loss;     ///< [E], differentiable through log_prob
  torch::Tensor ratio;    ///< [E], detached
  /// [E] bool: clipping changes the edge's gradient (PPO's clip fraction): the bounded branch is
  /// the one taken and it is flat there, i.e. A > 0 and rho > 1 + e_high g, or A < 0 and
  /// rho < 1 - e_low g. An edge outside its bounds on the side the loss does not clip still has
  /// its gradient, and one with A = 0 has none either way: neither counts.
  torch::Tensor clipped;
  torch::Tensor outside;  ///< [E] bool: rho outside [1 - e_low g, 1 + e_high g], whatever A
};
Surrogate clipped_surrogate(const torch::Tensor& log_prob, const torch::Tensor& old_log_prob,
                            const torch::Tensor& advantage, double eta, double e_low, double e_high);

/// The guided velocity the update trains, v_u + g (v_c - v_u), with the same values bit for bit as
/// model::guided_velocity (the same rows in the same forward passes, so that the replay check
/// holds), and the unconditional branch v_u detached unless `train_uncond`: its gradient is then
/// g dv_c. g = 1 is the conditional velocity alone. float32 [B, ...] on x's device.
torch::Tensor training_velocity(model::Policy& policy, const torch::Tensor& x, const torch::Tensor& sigma,
                                const model::Conditioning& cond, double guidance, std::int64_t max_rows,
                                bool train_uncond);

/// A trainable transition parent -> child of one input.
struct Edge {
  std::int32_t input = 0;
  std::int64_t parent = 0, child = 0, prompt = 0;
  std::int32_t step = 0;   ///< the parent's schedule index
  double level = 0;        ///< the kernel's noise level a at that step
  float advantage = 0;
  double old_log_prob = 0;
};

/// Every node with a finite advantage is the end of a trainable edge; checks that each has a
/// parent, a stored log-probability and a stochastic step. \throws DataError naming the file
std::vector<Edge> trainable_edges(const std::vector<RlInput>& inputs);

/// Each leaf's group-normalised advantage under the leaf rule (NaN where it has none; empty
/// without rewards), and from it the best leaf of every prompt and its normalised advantage
/// (leaf -1 for a prompt without leaves). The normalisation is the one the
/// file's /advantages settings record (aggregation, std ddof, eps, min std, clip, reward
/// weights and subset), the defaults of `advantage` where they are absent.
/// \throws DataError naming `name` and the dataset on a non-finite reward or bad settings
std::vector<double> leaf_advantages(const format::Trajectory& t, const std::string& name);
struct BestLeaf {
  std::int64_t leaf = -1;
  double advantage = 0;
};
std::vector<BestLeaf> best_leaves(const format::Trajectory& t, const std::string& name);

struct MinibatchMetrics {
  std::int64_t epoch = 0;
  std::int64_t minibatch = 0;       ///< 1-based count of minibatches done in this update
  std::int64_t step = 0;            ///< optimizer steps done (over all updates of the checkpoint)
  std::int64_t edges = 0;
  std::int64_t sft_items = 0;
  double loss = 0, loss_grpo = 0, loss_sft = 0, loss_kl = 0;
  double ratio_dev = 0;             ///< mean |rho - 1|
  double max_ratio_dev = 0;         ///< max |rho - 1|
  double clip_fraction = 0;         ///< edges whose gradient clipping removed (Surrogate::clipped)
  double outside_fraction = 0;      ///< edges with rho outside their bounds (Surrogate::outside)
  double approx_kl = 0;             ///< mean (l_old - l_theta)
  double grad_norm = -1;            ///< before clipping; -1 when no optimizer step followed
  /// Per loss term (as weighted in the loss: L_grpo, lambda L_sft, beta_kl L_kl), at an
  /// optimizer step: the norm of the term's own gradient, and its share of the total gradient
  /// g = sum of the terms' gradients, <g_term, g> / |g|^2 (the shares sum to 1; a negative share
  /// opposes the total). -1 norms and NaN shares when the term is absent or no step followed.
  double grad_norm_grpo = -1, grad_norm_sft = -1, grad_norm_kl = -1;
  double grad_share_grpo = NAN, grad_share_sft = NAN, grad_share_kl = NAN;
  double lambda = 0;
  double seconds = 0;
};

struct RlResult {
  OptimizerState state;
  std::int64_t minibatches_done = 0;  ///< of this update
  std::int64_t minibatches_total = 0;
};

/// The units an RL minibatch counts: trainable edges, or NFT items (leaves x timesteps).
std::int64_t rl_units(const std::vector<RlInput>& inputs, const RlConfig& c);

/// Trains `policy` on `inputs` from minibatch `start_minibatch` of this update (a resumed run).
/// `reference` (kl_weight > 0) is the frozen policy of the KL term; `sft_data` the pairs of the
/// dataset target. `on_replay(max |rho - 1|)` is called after the forward pass of the update's
/// first minibatch, before any weight changes (it throws to refuse); `on_minibatch` after each
/// minibatch returns false to stop early. Edges and SFT items of every minibatch are split
/// across the communicator's ranks; gradients are summed so that every rank takes the same step.
/// \throws DataError, UsageError, ResourceError (a lost peer)
RlResult train_rl(model::Policy& policy, model::Policy* reference, const std::vector<RlInput>& inputs,
                  const format::Dataset* sft_data, const RlConfig& config, OptimizerState state,
                  std::int64_t start_minibatch, Communicator& comm, const std::function<void(double)>& on_replay,
                  const std::function<bool(const MinibatchMetrics&)>& on_minibatch);

}  // namespace treerpo::training
