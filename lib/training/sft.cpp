// sft.cpp -- supervised flow-matching training with keyed randomness.
#include "training/sft.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <numeric>

#include "core/error.hpp"
#include "core/text.hpp"
#include "core/rng.hpp"

namespace treerpo::training {
namespace {
// The order of samples in epoch `epoch`: a keyed Fisher-Yates shuffle.
std::vector<std::int64_t> epoch_order(std::uint64_t seed, std::int64_t epoch, std::int64_t n) {
  return rng::permutation(rng::derive_key(seed, rng::Domain::minibatch, {static_cast<std::uint64_t>(epoch)}), n);
}
}  // namespace

torch::Tensor images_to_latents(const format::ByteArray& images) {
  const auto N = static_cast<std::int64_t>(images.shape.at(0));
  const auto H = static_cast<std::int64_t>(images.shape.at(1)), W = static_cast<std::int64_t>(images.shape.at(2));
  return torch::from_blob(const_cast<std::uint8_t*>(images.data.data()), {N, H, W, 3}, torch::kByte)
      .permute({0, 3, 1, 2})
      .to(torch::kFloat)
      .div(127.5)
      .sub(1.0)
      .contiguous();
}

torch::Tensor flow_matching_loss(model::Policy& policy, const torch::Tensor& x0, const torch::Tensor& noise,
                                 const torch::Tensor& sigma, const model::Conditioning& cond,
                                 const torch::Tensor& weight) {
  const auto device = policy.placement().device;
  std::vector<std::int64_t> view(static_cast<std::size_t>(x0.dim()), 1);
  view[0] = x0.size(0);
  const auto s = sigma.view(view);
  const auto xs = (1 - s) * x0 + s * noise;
  const auto target = (noise - x0).to(device);
  const auto v = policy.velocity(xs.to(device), sigma.to(device), cond.to(device));
  const auto sq = (v.to(torch::kFloat) - target).pow(2);
  if (!weight.defined()) return sq.mean();
  return (sq.flatten(1).mean(1) * weight.to(device)).mean();
}

double learning_rate(const SftConfig& c, std::int64_t step) {
  if (c.warmup > 0 && step < c.warmup) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup);
  const double span = static_cast<double>(std::max<std::int64_t>(1, c.steps - c.warmup));
  const double t = std::clamp(static_cast<double>(step - c.warmup) / span, 0.0, 1.0);
  switch (c.schedule) {
    case LrSchedule::linear: return c.lr * (1.0 - t);
    case LrSchedule::cosine: return c.lr * 0.5 * (1.0 + std::cos(M_PI * t));
    case LrSchedule::constant: break;
  }
  return c.lr;
}

double ema_decay_at(double decay, std::int64_t steps_done) {
  const auto n = static_cast<double>(steps_done);
  return std::min(decay, (1.0 + n) / (10.0 + n));
}

void load_moving_average(model::Policy& policy, const OptimizerState& state) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : policy.named_parameters()) {
    if (!p.requires_grad()) continue;
    const auto it = state.tensors.find("ema." + name);
    if (it == state.tensors.end()) throw UsageError("the training state keeps no moving average of " + name);
    p.copy_(it->second);
  }
}

OptimizerState train_sft(model::Policy& policy, const SftConfig& c, const format::Prompts& prompts,
                         const format::ByteArray& images, OptimizerState state,
                         const std::function<bool(const StepMetrics&)>& on_step) {
  const auto N = static_cast<std::int64_t>(images.shape.at(0));
  const auto H = static_cast<std::int64_t>(images.shape[1]), W = static_cast<std::int64_t>(images.shape[2]);
  const auto shape = policy.latent_shape();
  if (shape != std::vector<std::int64_t>{3, H, W})
    throw DataError("the data set's images are " + std::to_string(H) + "x" + std::to_string(W) +
                    " RGB but the policy's latents are " + shape_text(shape));
  const auto x0_all = images_to_latents(images);  // the built-in model works in pixel space
  const auto cond_all = model::conditioning_for(policy, prompts, 0, static_cast<std::size_t>(N), "data set");
  const auto null_one = policy.null_conditioning(1, cond_all.slice(0, 1));

  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& [name, p] : policy.named_parameters())
    if (p.requires_grad()) params.emplace_back(name, p);
  Optimizer opt(params, AdamWSettings{c.lr, c.weight_decay, c.beta1, c.beta2}, state);
  // The moving average of the weights (DiT samples from one), resumed where the state has it.
  std::vector<torch::Tensor> average;
  if (c.ema_decay > 0)
    for (const auto& [name, p] : params) {
      const auto it = state.tensors.find("ema." + name);
      average.push_back(it != state.tensors.end() ? it->second.to(p.device(), p.scalar_type()).clone()
                                                  : p.detach().clone());
    }

  const std::int64_t end = c.until < 0 ? c.steps : std::min(c.until, c.steps);
  const std::int64_t B = c.batch_size;
  std::int64_t step = state.step;
  std::pair<std::int64_t, std::vector<std::int64_t>> cached{-1, {}};  // (epoch, its sample order)
  while (step < end) {
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = learning_rate(c, step);
    opt.set_lr(lr);
    opt.zero_grad();
    double loss_sum = 0;
    for (std::int64_t micro = 0; micro < c.grad_accum; ++micro) {
      const std::int64_t first = (step * c.grad_accum + micro) * B;  // global draw index of the batch
      std::vector<std::int64_t> idx;
      std::vector<model::Conditioning> conds;
      auto noise = torch::empty({B, 3, H, W});
      auto sigma = torch::empty({B});
      auto* np = noise.data_ptr<float>();
      for (std::int64_t j = 0; j < B; ++j) {
        const std::int64_t d = first + j, epoch = d / N;
        if (cached.first != epoch) cached = {epoch, epoch_order(c.seed, epoch, N)};
        const std::int64_t i = cached.second[static_cast<std::size_t>(d % N)];
        idx.push_back(i);
        rng::NormalStream r(rng::derive_key(c.seed, rng::Domain::sft_noise, {static_cast<std::uint64_t>(d)}));
        const double u = r.next_uniform();
        const double s = c.timestep_sampling == TimestepSampling::logit_normal ? 1.0 / (1.0 + std::exp(-r.next())) : u;
        sigma[j] = static_cast<float>(s);
        const bool drop = r.next_uniform() < c.cond_dropout;
        conds.push_back(drop ? null_one : cond_all.slice(i, i + 1));
        r.fill(np + j * 3 * H * W, 3 * H * W);
      }
      const auto x0 = x0_all.index_select(0, torch::tensor(idx));
      const auto loss = flow_matching_loss(policy, x0, noise, sigma, model::Conditioning::cat(conds)) /
                        static_cast<double>(c.grad_accum);
      loss.backward();
      loss_sum += loss.item<double>();
    }
    const double norm = opt.clip_grad_norm(c.grad_clip);
    opt.step();
    ++step;
    if (!average.empty()) {
      torch::NoGradGuard no_grad;
      const double d = ema_decay_at(c.ema_decay, step);
      for (std::size_t k = 0; k < average.size(); ++k) average[k].mul_(d).add_(params[k].second.detach(), 1.0 - d);
    }
    StepMetrics m;
    m.step = step;
    m.loss = loss_sum;
    m.lr = lr;
    m.grad_norm = norm;
    m.samples_per_s = static_cast<double>(B * c.grad_accum) /
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_step && !on_step(m)) break;
  }

  auto out = opt.state(step);
  for (std::size_t k = 0; k < average.size(); ++k) out.tensors["ema." + params[k].first] = average[k];
  return out;
}

}  // namespace treerpo::training
