// ode.hpp -- the deterministic solvers of the ODE parts of sampling (a rollout's trunk and
// suffix, evaluation): Euler, and DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2;
// MixGRPO-Flash uses it outside the window), which reuses the previous step's clean-image
// prediction for second order at no extra model evaluation, so that coarser steps keep quality.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace treerpo::flow {

enum class OdeSolver { euler, dpm2m };
const char* ode_solver_name(OdeSolver s);

/// The schedule indices an ODE segment from step `from` to step `to` evaluates the model at when it
/// takes `stride` schedule intervals per step: from, from + stride, ... (< to); the segment ends at
/// `to` exactly (its last step may be shorter). Empty when from == to.
/// \throws std::invalid_argument when stride < 1 or from > to
std::vector<std::int64_t> ode_visits(std::int64_t from, std::int64_t to, std::int64_t stride);

/// Model evaluations of such a segment: ceil((to - from) / stride).
std::int64_t ode_evaluations(std::int64_t from, std::int64_t to, std::int64_t stride);

/// Steps one ODE segment (rows fixed along it). In the rectified-flow parameterisation
/// x = (1 - sigma) x0 + sigma noise, with x0_hat = x - sigma v and lambda = log((1 - sigma) / sigma):
///   euler:  x' = x + (sigma' - sigma) v  (= DPM-Solver++'s first order for this parameterisation);
///   dpm2m:  h = lambda' - lambda, r = h_prev / h, D = (1 + 1 / (2 r)) x0_hat - 1 / (2 r) x0_hat_prev,
///           x' = (sigma' / sigma) x + (1 - sigma') (1 - exp(-h)) D,
///           and the Euler step where there is no previous prediction (the segment's first step, or a
///           previous step from sigma = 1, where lambda is -inf) and to sigma' = 0 (diffusers'
///           lower_order_final).
/// Arithmetic in float32 or wider, like the stochastic steps.
class OdeIntegrator {
 public:
  explicit OdeIntegrator(OdeSolver solver) : solver_(solver) {}
  /// \throws std::invalid_argument unless 1 >= sigma > sigma_next >= 0
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& v, double sigma, double sigma_next);

 private:
  OdeSolver solver_;
  torch::Tensor previous_x0_;  // undefined: no usable history
  double previous_h_ = 0;
};

}  // namespace treerpo::flow
