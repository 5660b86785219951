// denoising_probe.cpp -- one-step predictions of noised renders.
#include "evaluation/denoising_probe.hpp"

#include <torch/torch.h>

#include <stdexcept>

#include "core/rng.hpp"
#include "evaluation/ode_sampler.hpp"

namespace treerpo::evaluation {

ProbeResult denoising_probe(model::Policy& policy, const torch::Tensor& renders, const model::Conditioning& cond,
                            const std::vector<double>& sigmas, std::uint64_t seed) {
  if (renders.dim() != 4) throw std::invalid_argument("denoising_probe: renders must be [N, C, H, W]");
  const auto N = renders.size(0);
  std::vector<std::int64_t> shape(renders.sizes().begin() + 1, renders.sizes().end());
  // The probe's noise: keyed like evaluation noise, under a prompt id no prompt file uses.
  std::vector<torch::Tensor> noise;
  for (std::int64_t i = 0; i < N; ++i) noise.push_back(initial_noise(seed, -1, i, shape));
  const auto e = torch::stack(noise);
  ProbeResult r;
  r.sigmas = sigmas;
  torch::NoGradGuard no_grad;
  const auto device = policy.placement().device;
  for (double s : sigmas) {
    if (!(s > 0 && s <= 1)) throw std::invalid_argument("denoising_probe: sigma must be in (0, 1]");
    const auto xs = (1 - s) * renders + s * e;
    const auto sigma = torch::full({N}, s, torch::kFloat);
    const auto v = policy.velocity(xs.to(device), sigma.to(device), cond.to(device)).to(torch::kCPU, torch::kFloat);
    const auto x0_hat = xs - s * v;
    r.mse.push_back((x0_hat - renders).pow(2).mean().item<double>());
    r.predictions.push_back(to_images(x0_hat));
    r.noised.push_back(to_images(xs));
  }
  return r;
}

}  // namespace treerpo::evaluation
