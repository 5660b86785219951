// ode.cpp -- Euler and DPM-Solver++(2M) steps for the ODE parts of sampling.
#include "flow/ode.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

#include "flow/step.hpp"

namespace treerpo::flow {

const char* ode_solver_name(OdeSolver s) { return s == OdeSolver::dpm2m ? "dpm2m" : "euler"; }

std::vector<std::int64_t> ode_visits(std::int64_t from, std::int64_t to, std::int64_t stride) {
  if (stride < 1) throw std::invalid_argument("the ODE stride must be >= 1");
  if (from > to) throw std::invalid_argument("an ODE segment must not go backwards");
  std::vector<std::int64_t> visits;
  for (std::int64_t i = from; i < to; i += stride) visits.push_back(i);
  return visits;
}

std::int64_t ode_evaluations(std::int64_t from, std::int64_t to, std::int64_t stride) {
  if (stride < 1) throw std::invalid_argument("the ODE stride must be >= 1");
  return (to - from + stride - 1) / stride;
}

torch::Tensor OdeIntegrator::step(const torch::Tensor& x, const torch::Tensor& v, double sigma, double sigma_next) {
  // Euler: the exact arithmetic of ode_step, so that euler and dpm2m's first-order steps agree bit for bit.
  const auto euler = ode_step(x, v, {sigma, sigma_next, sigma});
  if (solver_ == OdeSolver::euler) return euler;
  const auto xw = x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat);
  const auto x0 = xw - v.to(xw.scalar_type()) * sigma;
  const bool from_one = sigma >= 1.0;  // lambda = -inf: no finite step size to extrapolate with
  if (!previous_x0_.defined() || from_one || sigma_next <= 0.0) {
    previous_x0_ = from_one ? torch::Tensor() : x0;
    previous_h_ = from_one || sigma_next <= 0.0 ? 0.0 : std::log((1 - sigma_next) / sigma_next) - std::log((1 - sigma) / sigma);
    return euler;
  }
  const double h = std::log((1 - sigma_next) / sigma_next) - std::log((1 - sigma) / sigma);
  const double r = previous_h_ / h;
  const auto d = x0 * (1 + 1 / (2 * r)) - previous_x0_ * (1 / (2 * r));
  previous_x0_ = x0;
  previous_h_ = h;
  return xw * (sigma_next / sigma) + d * ((1 - sigma_next) * -std::expm1(-h));
}

}  // namespace treerpo::flow
