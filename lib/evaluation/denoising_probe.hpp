// denoising_probe.hpp -- where a pixel-space flow model fails: ground-truth renders noised to
// sigma, and the model's one-step prediction x0_hat = x_sigma - sigma v. At low sigma a model
// that denoises locally is close to the render; at high sigma its image tokens must agree on
// where an object goes, and a model that paints patches shows blocks or a blur there.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/policy.hpp"
#include "shapes/render.hpp"

namespace treerpo::evaluation {

struct ProbeResult {
  std::vector<double> sigmas;
  std::vector<double> mse;                                ///< mean over samples and elements, [-1, 1] units
  std::vector<std::vector<shapes::Image>> predictions;    ///< [sigma][sample]: x0_hat
  std::vector<std::vector<shapes::Image>> noised;         ///< [sigma][sample]: x_sigma
};

/// Noises each render (an [N, 3, H, W] float batch in [-1, 1], one conditioning row per render)
/// to every sigma with noise keyed by (seed, render index), and returns the conditional
/// prediction's MSE to the render per sigma, with the images. \throws std::invalid_argument
ProbeResult denoising_probe(model::Policy& policy, const torch::Tensor& renders, const model::Conditioning& cond,
                            const std::vector<double>& sigmas, std::uint64_t seed);

}  // namespace treerpo::evaluation
