// ode_sampler.cpp -- deterministic ODE sampling with keyed noise and guidance.
#include "evaluation/ode_sampler.hpp"

#include <torch/torch.h>

#include <stdexcept>

#include "core/rng.hpp"
#include "flow/schedule.hpp"
#include "flow/noise.hpp"
#include "flow/ode.hpp"

namespace treerpo::evaluation {

torch::Tensor initial_noise(std::uint64_t seed, std::int64_t prompt_id, std::int64_t sample,
                            const std::vector<std::int64_t>& shape) {
  return flow::keyed_normal(
      rng::derive_key(seed, rng::Domain::evaluation,
                      {static_cast<std::uint64_t>(prompt_id), static_cast<std::uint64_t>(sample)}),
      shape);
}

torch::Tensor sample_ode(model::Policy& policy, const model::Conditioning& cond, const std::vector<SampleItem>& items,
                         const OdeSamplerConfig& c, const std::function<bool(std::size_t)>& on_wave) {
  if (c.max_batch < 1) throw std::invalid_argument("max batch must be >= 1");
  const auto shape = policy.latent_shape();
  const auto sigmas = flow::schedule_sigmas(c.schedule, c.steps, c.shift,
                                            shape.size() == 3 ? (shape[1] / 2) * (shape[2] / 2) : 0);
  const auto device = policy.placement().device;
  // Waves of samples bound the memory of states; each step's model calls are chunked further.
  const auto wave = std::max<std::int64_t>(1, c.guidance != 1.0 ? c.max_batch / 2 : c.max_batch);
  std::vector<std::int64_t> out_shape{static_cast<std::int64_t>(items.size())};
  out_shape.insert(out_shape.end(), shape.begin(), shape.end());
  auto out = torch::empty(out_shape, torch::kFloat);
  torch::NoGradGuard no_grad;
  for (std::size_t begin = 0; begin < items.size(); begin += static_cast<std::size_t>(wave)) {
    const std::size_t end = std::min(items.size(), begin + static_cast<std::size_t>(wave));
    std::vector<torch::Tensor> x0;
    std::vector<model::Conditioning> rows;
    for (std::size_t i = begin; i < end; ++i) {
      x0.push_back(initial_noise(c.seed, items[i].prompt_id, items[i].sample, shape));
      rows.push_back(cond.slice(items[i].row, items[i].row + 1));
    }
    auto x = torch::stack(x0).to(device);
    const auto wave_cond = model::Conditioning::cat(rows);
    flow::OdeIntegrator solver(c.solver);
    for (std::int64_t i = 0; i < c.steps; ++i) {
      const auto s = sigmas[static_cast<std::size_t>(i)];
      const auto v = model::guided_velocity(policy, x, s, wave_cond, c.guidance, c.max_batch);
      x = solver.step(x, v, s, sigmas[static_cast<std::size_t>(i) + 1]);
    }
    out.slice(0, static_cast<std::int64_t>(begin), static_cast<std::int64_t>(end)).copy_(x.to(torch::kCPU));
    if (on_wave && !on_wave(end)) break;
  }
  return out;
}

std::vector<shapes::Image> to_images(const torch::Tensor& latents) {
  const auto bytes = model::to_pixels(latents);
  const auto N = bytes.size(0), H = bytes.size(1), W = bytes.size(2);
  std::vector<shapes::Image> images(static_cast<std::size_t>(N));
  const auto* p = bytes.data_ptr<std::uint8_t>();
  for (std::int64_t i = 0; i < N; ++i) {
    auto& img = images[static_cast<std::size_t>(i)];
    img.height = static_cast<int>(H);
    img.width = static_cast<int>(W);
    img.rgb.assign(p + i * H * W * 3, p + (i + 1) * H * W * 3);
  }
  return images;
}

}  // namespace treerpo::evaluation
