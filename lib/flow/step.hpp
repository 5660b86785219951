// step.hpp -- one sampling step of a flow-matching model (ALGORITHM.md section 2): the Euler
// ODE step and the stochastic kernels "flowgrpo" (default), "dance" and "cps", each as a
// Gaussian transition x' ~ N(mean, std^2 I) with its log-probability.
#pragma once
#include <torch/types.h>

#include <optional>
#include <string>

namespace treerpo::flow {

enum class Kernel { flowgrpo, dance, cps };
enum class Reduction { mean, sum };

Kernel parse_kernel(const std::string& name);     ///< \throws std::invalid_argument
const char* kernel_name(Kernel k);
Reduction parse_reduction(const std::string& name);  ///< \throws std::invalid_argument
const char* reduction_name(Reduction r);

/// Where a step goes: sigma -> sigma_next on a schedule whose second entry is sigma_1
/// (used in place of sigma when sigma == 1, so the first step does not divide by zero).
struct StepSigmas {
  double sigma;
  double sigma_next;
  double sigma_1;
};

/// The Gaussian transition of one stochastic step. `mean` carries the gradient of v.
struct Transition {
  torch::Tensor mean;  ///< [B, ...], float32 or wider
  double std = 0.0;    ///< standard deviation of x' given x along every direction the noise spans
  /// Noise block: 1 = isotropic noise over every element; B > 1 = noise confined to images that
  /// are constant on B x B pixel blocks (the span of block_project), std along each of its
  /// orthonormal directions.
  std::int64_t block = 1;
};

/// The orthogonal projection onto images [B, C, H, W] that are constant on `block` x `block`
/// pixel blocks: each block replaced by its mean. Identity for block 1. Differentiable.
/// \throws std::invalid_argument when H or W is not a multiple of block, or x is not 4-d
torch::Tensor block_project(const torch::Tensor& x, std::int64_t block);

/// The coordinates of x [B, C, H, W] in the orthonormal basis of that span ([B, C, H/block,
/// W/block]: block times each block's mean); x itself for block 1.
torch::Tensor block_coordinates(const torch::Tensor& x, std::int64_t block);

/// Euler step x' = x + v (sigma_next - sigma), in float32 or wider.
torch::Tensor ode_step(const torch::Tensor& x, const torch::Tensor& v, const StepSigmas& s);

/// The kernel's mean and std at noise level `a` (ALGORITHM.md section 2, exactly):
///   flowgrpo: c = a sqrt(sigma / (1 - sigma~)), mean = x + [v + c^2 / (2 sigma) (x + (1 - sigma) v)] dt,
///             std = c sqrt(-dt)
///   dance:    c = a, same mean form, std = a sqrt(-dt)
///   cps:      std = sigma' sin(a pi / 2), mean = (1 - sigma') (x - sigma v) + sqrt(sigma'^2 - std^2) (x + (1 - sigma)
///   v)
/// With a noise block B > 1 the noise spans only the block-constant images (projection P =
/// block_project), and the drift's score term is projected alike, so that the step keeps the ODE's
/// marginals (the reverse SDE with diffusion c^2 P):
///   flowgrpo/dance: mean = x + [v + c^2 / (2 sigma) P(x + (1 - sigma) v)] dt
///   cps:            mean = (1 - sigma') x0 + sigma' x1 + (sqrt(sigma'^2 - std^2) - sigma') P(x1)
/// Inputs of a narrower dtype are widened to float32 first. \throws std::invalid_argument on a
/// step that does not go down the schedule, a negative level or a block that does not tile x.
Transition transition(Kernel kernel, const torch::Tensor& x, const torch::Tensor& v, const StepSigmas& s, double a,
                      std::int64_t block = 1);

/// Per-sample Gaussian log-density of x' under N(mean, std^2 I): per element
/// -(x' - mean)^2 / (2 std^2) - log(std) - log(sqrt(2 pi)), reduced over all non-batch elements.
/// With a noise block B > 1, the density of the coordinates z = block_coordinates(x' - mean) in
/// the noise's span instead, reduced over those H W C / B^2 coordinates.
/// Computed and returned in float64 ([B]), whatever mean's dtype: the `sum` reduction of a large
/// latent is too big for float32 to keep ratios exact. Differentiable through mean.
torch::Tensor log_prob(const torch::Tensor& x_next, const Transition& t, Reduction reduction);

/// Rounding hook: the value a state takes when stored in `storage` (e.g. float16), returned in
/// the compute dtype of `x`. Identity when storage is at least as wide as x.
torch::Tensor round_to_storage(const torch::Tensor& x, std::optional<torch::ScalarType> storage);

/// The result of a stochastic step.
struct StepResult {
  torch::Tensor next;      ///< x' (already rounded to the storage dtype, if any)
  torch::Tensor mean;      ///< the transition's mean
  double std = 0.0;        ///< the transition's std
  torch::Tensor log_prob;  ///< [B] float64 log-probability of `next`
};

/// One stochastic step with given standard-normal noise `eps` (same shape as x): x' = mean + std eps
/// (mean + std block_project(eps) with a noise block B > 1: eps's own component in the span),
/// rounded to `storage` BEFORE its log-probability is computed, so that a re-evaluation of the
/// stored state reproduces the stored log-probability (ALGORITHM.md's consistency rule).
StepResult sde_step(Kernel kernel, const torch::Tensor& x, const torch::Tensor& v, const StepSigmas& s, double a,
                    const torch::Tensor& eps, Reduction reduction,
                    std::optional<torch::ScalarType> storage = std::nullopt, std::int64_t block = 1);

}  // namespace treerpo::flow
