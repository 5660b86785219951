// sft.hpp -- the flow-matching (SFT) objective of ALGORITHM.md section 1 on (prompt, image)
// pairs, with AdamW, gradient clipping, a learning-rate schedule, gradient accumulation and
// conditioning dropout. Every random draw is keyed by (seed, step, sample), so a run resumed
// from a checkpoint continues exactly as an uninterrupted one. No files, no CLI here.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "format/trajectory.hpp"
#include "model/policy.hpp"
#include "training/optimizer.hpp"

namespace treerpo::training {

/// The learning rate after warmup: constant, or decaying linearly or as a cosine to 0.
enum class LrSchedule { constant, linear, cosine };
/// How the noise level of a training pair is drawn: uniform in [0, 1), or logit-normal (SD3).
enum class TimestepSampling { uniform, logit_normal };

struct SftConfig {
  std::int64_t steps = 1000;           ///< length of the schedule (optimizer steps)
  std::int64_t until = -1;             ///< stop after this step (-1 = steps); for staged runs
  std::int64_t batch_size = 32;        ///< samples per micro-batch
  std::int64_t grad_accum = 1;         ///< micro-batches per optimizer step
  double lr = 1e-4;
  LrSchedule schedule = LrSchedule::cosine;
  std::int64_t warmup = 0;
  double weight_decay = 1e-4;
  double beta1 = 0.9, beta2 = 0.999;
  double grad_clip = 1.0;              ///< max global grad norm; 0 = off
  double cond_dropout = 0.1;           ///< probability of the null prompt (for CFG)
  TimestepSampling timestep_sampling = TimestepSampling::uniform;
  double ema_decay = 0;                ///< decay of the weights' moving average; 0 = none kept
  std::uint64_t seed = 0;
};

/// Flow-matching loss (ALGORITHM.md section 1) of a batch: x0 [B, ...] data, noise [B, ...] e,
/// sigma [B] on CPU; mean over samples of `weight` [B] (undefined = 1) times the per-sample mean of
/// (v(x_sigma, sigma, c) - (e - x0))^2. Differentiable in the policy's parameters.
torch::Tensor flow_matching_loss(model::Policy& policy, const torch::Tensor& x0, const torch::Tensor& noise,
                                 const torch::Tensor& sigma, const model::Conditioning& cond,
                                 const torch::Tensor& weight = {});

/// Images [N, H, W, 3] uint8 as pixel-space latents in [-1, 1], [N, 3, H, W] float32.
torch::Tensor images_to_latents(const format::ByteArray& images);

/// Learning rate at (0-based) step under the schedule.
double learning_rate(const SftConfig& c, std::int64_t step);

struct StepMetrics {
  std::int64_t step = 0;  ///< 1-based number of optimizer steps done
  double loss = 0, lr = 0, grad_norm = 0, samples_per_s = 0;
};

/// Decay of the moving average after `steps_done` optimizer steps: min(decay, (1 + n) / (10 + n)),
/// so that the random initial weights fade within the first steps.
double ema_decay_at(double decay, std::int64_t steps_done);

/// Copies the moving average that `state` carries ("ema.<param>") into the policy's parameters;
/// throws if the state holds none for a trainable parameter.
void load_moving_average(model::Policy& policy, const OptimizerState& state);

/// Runs SFT from `state.step` to min(until, steps). `images` [N, H, W, 3] uint8 with texts;
/// `on_step` gets metrics after each optimizer step and returns false to stop early (a signal).
/// With `ema_decay` > 0 the state also carries the weights' moving average ("ema.<param>"),
/// resumed from `state` where present. Returns the state to store with the weights.
OptimizerState train_sft(model::Policy& policy, const SftConfig& config, const format::Prompts& prompts,
                         const format::ByteArray& images, OptimizerState state,
                         const std::function<bool(const StepMetrics&)>& on_step);

}  // namespace treerpo::training
