// step.cpp -- the step kernels. All arithmetic in float32 or wider whatever the model dtype.
#include "flow/step.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

namespace treerpo::flow {
namespace {
torch::Tensor widen(const torch::Tensor& t) {
  const auto dt = t.scalar_type();
  return (dt == torch::kFloat || dt == torch::kDouble) ? t : t.to(torch::kFloat);
}

void check_sigmas(const StepSigmas& s) {
  if (!(s.sigma > s.sigma_next) || s.sigma > 1.0 || s.sigma_next < 0.0)
    throw std::invalid_argument("step: expected 1 >= sigma > sigma_next >= 0");
}
}  // namespace

Kernel parse_kernel(const std::string& name) {
  if (name == "flowgrpo") return Kernel::flowgrpo;
  if (name == "dance") return Kernel::dance;
  if (name == "cps") return Kernel::cps;
  throw std::invalid_argument("unknown step kernel '" + name + "' (expected flowgrpo, dance or cps)");
}

const char* kernel_name(Kernel k) {
  switch (k) {
    case Kernel::flowgrpo: return "flowgrpo";
    case Kernel::dance: return "dance";
    case Kernel::cps: return "cps";
  }
  return "?";
}

Reduction parse_reduction(const std::string& name) {
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  throw std::invalid_argument("unknown log-probability reduction '" + name + "' (expected mean or sum)");
}

const char* reduction_name(Reduction r) { return r == Reduction::mean ? "mean" : "sum"; }

namespace {
void check_block(const torch::Tensor& x, std::int64_t block) {
  if (block < 1) throw std::invalid_argument("noise block must be >= 1, got " + std::to_string(block));
  if (block == 1) return;
  if (x.dim() != 4 || x.size(2) % block != 0 || x.size(3) % block != 0)
    throw std::invalid_argument("noise block " + std::to_string(block) + " does not tile a latent of shape " +
                                c10::str(x.sizes()) + " (expected [B, C, H, W] with H and W multiples of it)");
}
}  // namespace

torch::Tensor block_coordinates(const torch::Tensor& x, std::int64_t block) {
  check_block(x, block);
  if (block == 1) return x;
  // A block's unit vector has entries 1/B, so the coordinate is sum / B = B * mean.
  return at::avg_pool2d(x, {block, block}) * static_cast<double>(block);
}

torch::Tensor block_project(const torch::Tensor& x, std::int64_t block) {
  check_block(x, block);
  if (block == 1) return x;
  return at::avg_pool2d(x, {block, block}).repeat_interleave(block, 2).repeat_interleave(block, 3);
}

torch::Tensor ode_step(const torch::Tensor& x, const torch::Tensor& v, const StepSigmas& s) {
  check_sigmas(s);
  return widen(x) + widen(v) * (s.sigma_next - s.sigma);
}

Transition transition(Kernel kernel, const torch::Tensor& x_in, const torch::Tensor& v_in, const StepSigmas& s,
                      double a, std::int64_t block) {
  check_sigmas(s);
  if (a < 0) throw std::invalid_argument("step: noise level must be >= 0");
  const torch::Tensor x = widen(x_in), v = widen(v_in).to(x.scalar_type());
  const double sigma = s.sigma, dt = s.sigma_next - s.sigma;
  if (block != 1) check_block(x, block);
  const auto P = [block](const torch::Tensor& u) { return block_project(u, block); };
  Transition t;
  t.block = block;
  switch (kernel) {
    case Kernel::flowgrpo:
    case Kernel::dance: {
      double c = a;
      if (kernel == Kernel::flowgrpo) {
        const double sigma_t = sigma == 1.0 ? s.sigma_1 : sigma;  // first-step rule
        c = a * std::sqrt(sigma / (1.0 - sigma_t));
      }
      t.mean = x + (v + (c * c / (2.0 * sigma)) * P(x + (1.0 - sigma) * v)) * dt;
      t.std = c * std::sqrt(-dt);
      break;
    }
    case Kernel::cps: {
      const double sn = s.sigma_next;
      t.std = sn * std::sin(a * M_PI / 2.0);
      const torch::Tensor x0 = x - sigma * v, x1 = x + (1.0 - sigma) * v;
      const double kept = std::sqrt(std::max(0.0, sn * sn - t.std * t.std));
      // Isotropic: (1 - sigma') x0 + kept x1. With a block, only x1's part in the noise's span
      // gives way to fresh noise; the rest keeps sigma' x1.
      t.mean = block == 1 ? (1.0 - sn) * x0 + kept * x1 : (1.0 - sn) * x0 + sn * x1 + (kept - sn) * P(x1);
      break;
    }
  }
  return t;
}

torch::Tensor log_prob(const torch::Tensor& x_next, const Transition& t, Reduction reduction) {
  if (!(t.std > 0)) throw std::invalid_argument("log_prob: the transition is deterministic (std = 0)");
  // float64 from here on: a sum over 16x64x64 elements is ~1e5 in size, where float32 keeps
  // only ~1e-2 of it, and exp(l_theta - l_old) must come out 1 to ~1e-10 on replay.
  const torch::Tensor d = block_coordinates(x_next.to(torch::kDouble) - t.mean.to(torch::kDouble), t.block);
  const torch::Tensor elem = -(d * d) / (2.0 * t.std * t.std) - std::log(t.std) - 0.5 * std::log(2.0 * M_PI);
  const torch::Tensor flat = elem.reshape({elem.size(0), -1});
  return reduction == Reduction::mean ? flat.mean(1) : flat.sum(1);
}

torch::Tensor round_to_storage(const torch::Tensor& x, std::optional<torch::ScalarType> storage) {
  if (!storage || c10::elementSize(*storage) >= c10::elementSize(x.scalar_type())) return x;
  return x.to(*storage).to(x.scalar_type());
}

StepResult sde_step(Kernel kernel, const torch::Tensor& x, const torch::Tensor& v, const StepSigmas& s, double a,
                    const torch::Tensor& eps, Reduction reduction, std::optional<torch::ScalarType> storage,
                    std::int64_t block) {
  StepResult r;
  const Transition t = transition(kernel, x, v, s, a, block);
  r.mean = t.mean;
  r.std = t.std;
  // x' never carries a gradient: only the mean does (ALGORITHM.md section 2).
  r.next = round_to_storage((t.mean + t.std * block_project(eps.to(t.mean.scalar_type()), block)).detach(), storage);
  r.log_prob = log_prob(r.next, t, reduction);
  return r;
}

}  // namespace treerpo::flow
