// ode_sampler.hpp -- deterministic ODE sampling of a policy for evaluation (ALGORITHM.md
// section 6): keyed initial noise per (prompt id, sample), Euler steps on the shifted
// schedule, optional classifier-free guidance, bounded batches.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "flow/ode.hpp"
#include "flow/schedule.hpp"
#include "model/policy.hpp"
#include "shapes/render.hpp"

namespace treerpo::evaluation {

struct OdeSamplerConfig {
  std::int64_t steps = 20;      ///< ODE steps from sigma = 1 to 0
  flow::OdeSolver solver = flow::OdeSolver::euler;
  double shift = 3.0;           ///< schedule shift (ALGORITHM.md section 1)
  flow::Schedule schedule = flow::Schedule::shifted;
  double guidance = 1.0;        ///< CFG scale w: v_u + w (v_c - v_u); 1 = conditional only
  std::int64_t max_batch = 128; ///< model rows per forward pass (CFG counts two per sample)
  std::uint64_t seed = 0;
};

/// One sample to draw: the prompt's row in the conditioning, its stable id and a sample index.
struct SampleItem {
  std::int64_t row = 0;
  std::int64_t prompt_id = 0;
  std::int64_t sample = 0;
};

/// The initial latent of a sample: standard normal, a pure function of (seed, prompt id, sample).
/// Returns [C, H, W] float32.
torch::Tensor initial_noise(std::uint64_t seed, std::int64_t prompt_id, std::int64_t sample,
                            const std::vector<std::int64_t>& shape);

/// Samples every item with ODE steps. `cond` holds one row per prompt (items index it by row).
/// Items are processed in waves that fit `max_batch`; the result of an item does not depend on
/// the wave it falls in beyond floating-point reassociation in the model. `on_wave` (optional)
/// gets the number of items done after each wave and returns false to stop (a signal).
/// Returns [items, C, H, W] float32 on the CPU. \throws std::invalid_argument on bad settings
torch::Tensor sample_ode(model::Policy& policy, const model::Conditioning& cond, const std::vector<SampleItem>& items,
                         const OdeSamplerConfig& config,
                         const std::function<bool(std::size_t)>& on_wave = nullptr);

/// Pixel-space latents in [-1, 1] ([N, 3, H, W]) as 8-bit RGB images (rounded, clamped).
std::vector<shapes::Image> to_images(const torch::Tensor& latents);

}  // namespace treerpo::evaluation
