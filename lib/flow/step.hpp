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
  double std = 0.0;    ///< standard deviation of x' given x (the same for every element)
};

/// Euler step x' = x + v (sigma_next - sigma), in float32 or wider.
torch::Tensor ode_step(const torch::Tensor& x, const torch::Tensor& v, const StepSigmas& s);

/// The kernel's mean and std at noise level `a` (ALGORITHM.md section 2, exactly):
///   flowgrpo: c = a sqrt(sigma / (1 - sigma~)), mean = x + [v + c^2 / (2 sigma) (x + (1 - sigma) v)] dt,
///             std = c sqrt(-dt)
///   dance:    c = a, same mean form, std = a sqrt(-dt)
///   cps:      std = sigma' sin(a pi / 2), mean = (1 - sigma') (x - sigma v) + sqrt(sigma'^2 - std^2) (x + (1 - sigma)
///   v)
/// Inputs of a narrower dtype are widened to float32 first. \throws std::invalid_argument on a
/// step that does not go down the schedule or a negative level.
Transition transition(Kernel kernel, const torch::Tensor& x, const torch::Tensor& v, const StepSigmas& s, double a);

/// Per-sample Gaussian log-density of x' under N(mean, std^2 I): per element
/// -(x' - mean)^2 / (2 std^2) - log(std) - log(sqrt(2 pi)), reduced over all non-batch elements.
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

/// One stochastic step with given standard-normal noise `eps` (same shape as x): x' = mean + std eps,
/// rounded to `storage` BEFORE its log-probability is computed, so that a re-evaluation of the
/// stored state reproduces the stored log-probability (ALGORITHM.md's consistency rule).
StepResult sde_step(Kernel kernel, const torch::Tensor& x, const torch::Tensor& v, const StepSigmas& s, double a,
                    const torch::Tensor& eps, Reduction reduction,
                    std::optional<torch::ScalarType> storage = std::nullopt);

}  // namespace treerpo::flow
