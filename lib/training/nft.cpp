// nft.cpp -- DiffusionNFT's negative-aware flow matching on the rollout's leaves.
#include "training/nft.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "flow/noise.hpp"

namespace treerpo::training {
namespace {
void require_advantages(const RlInput& in) {
  if (!in.trajectory->advantages) throw DataError(in.name + ": no /advantages: run `advantage` on it before `update`");
  if (in.trajectory->rewards.empty()) throw DataError(in.name + ": no /rewards: the NFT objective needs the leaves' rewards");
}
}  // namespace

std::int64_t count_nft_items(const std::vector<RlInput>& inputs, std::int64_t timesteps) {
  std::int64_t n = 0;
  for (const auto& in : inputs) {
    require_advantages(in);
    for (double a : leaf_advantages(*in.trajectory, in.name)) n += std::isfinite(a) ? 1 : 0;
  }
  return n * timesteps;
}

NftItems nft_items(model::Policy& policy, model::Policy* reference, const std::vector<RlInput>& inputs,
                   const RlConfig& c) {
  if (c.nft_timesteps < 1) throw UsageError("the NFT timesteps per leaf must be >= 1");
  if (!(c.nft_scale > 0)) throw UsageError("the NFT advantage scale must be > 0");
  const auto shape = policy.latent_shape();
  std::int64_t row = 1;
  for (auto s : shape) row *= s;
  std::vector<torch::Tensor> x0, noise;
  std::vector<float> sigma, optimality;
  std::vector<model::Conditioning> cond;
  for (const auto& in : inputs) {
    require_advantages(in);
    const auto& t = *in.trajectory;
    const auto adv = leaf_advantages(t, in.name);
    const auto T = static_cast<std::int64_t>(t.rollout.sigmas.size()) - 1;  // the last sigma is 0
    if (T < 1) throw DataError(in.name + ": /rollout sigmas: a schedule of at least one step expected");
    const auto prompt_cond = model::conditioning_for(policy, t.prompts, 0, t.prompts.text.size(), in.name);
    std::vector<std::int64_t> prompts;
    std::map<std::int64_t, std::uint64_t> leaves_seen;  // per prompt: the leaf's index within it
    for (std::size_t g = 0; g < t.leaves.size(); ++g) {
      const auto p = t.leaves.prompt[g];
      const auto within = leaves_seen[p]++;
      if (!std::isfinite(adv[g])) continue;
      const auto prompt_id = static_cast<std::uint64_t>(t.prompts.id[static_cast<std::size_t>(p)]);
      const auto leaf = torch::from_blob(const_cast<float*>(t.leaves.latent.data.data()) + static_cast<std::int64_t>(g) * row,
                                         shape, torch::kFloat);
      // Linear in A up to |A| = scale: the group's optimalities keep its advantages' zero mean, so
      // the pull toward its positive leaves balances the push from its negative ones.
      const float r = static_cast<float>((1.0 + std::clamp(adv[g] / c.nft_scale, -1.0, 1.0)) / 2.0);
      for (std::int64_t k = 0; k < c.nft_timesteps; ++k) {
        rng::NormalStream s(rng::derive_key(c.seed, rng::Domain::nft_noise,
                                            {static_cast<std::uint64_t>(c.iteration), prompt_id, within,
                                             static_cast<std::uint64_t>(k)}));
        const auto step = static_cast<std::size_t>(s.next_u64() % static_cast<std::uint64_t>(T));
        sigma.push_back(static_cast<float>(t.rollout.sigmas[step]));
        noise.push_back(flow::keyed_normal(s.next_u64(), shape));
        x0.push_back(leaf);
        optimality.push_back(r);
        prompts.push_back(p);
      }
    }
    if (!prompts.empty()) cond.push_back(prompt_cond.index_select(torch::tensor(prompts)));
  }
  NftItems items;
  if (sigma.empty()) return items;
  const auto x0s = torch::stack(x0), e = torch::stack(noise);
  items.sigma = torch::tensor(sigma);
  std::vector<std::int64_t> view(shape.size() + 1, 1);
  view[0] = -1;
  const auto s = items.sigma.view(view);
  items.x = (1 - s) * x0s + s * e;
  items.target = e - x0s;
  items.optimality = torch::tensor(optimality);
  items.cond = model::Conditioning::cat(cond);
  torch::NoGradGuard no_grad;
  const auto device = policy.placement().device;
  items.v_old = model::guided_velocity(policy, items.x.to(device), items.sigma, items.cond, 1.0, c.max_rows)
                    .to(torch::kCPU, torch::kFloat);
  if (reference)
    items.v_ref = model::guided_velocity(*reference, items.x.to(device), items.sigma, items.cond, 1.0, c.max_rows)
                      .to(torch::kCPU, torch::kFloat);
  return items;
}

NftSums nft_loss_sum(model::Policy& policy, const NftItems& items, const std::vector<std::int64_t>& rows,
                     double beta, std::int64_t max_rows) {
  const auto device = policy.placement().device;
  const auto idx = torch::tensor(rows);
  const auto x = items.x.index_select(0, idx).to(device);
  const auto sigma = items.sigma.index_select(0, idx);
  const auto u = items.target.index_select(0, idx).to(device);
  const auto v_old = items.v_old.index_select(0, idx).to(device);
  const auto r = items.optimality.index_select(0, idx).to(device);
  const auto cond = items.cond.index_select(idx).to(device);
  std::vector<torch::Tensor> parts;  // at most max_rows model rows per forward pass
  for (std::int64_t b = 0; b < x.size(0); b += max_rows) {
    const auto e = std::min(x.size(0), b + max_rows);
    parts.push_back(policy.velocity(x.slice(0, b, e), sigma.slice(0, b, e).to(device), cond.slice(b, e)));
  }
  const auto v = torch::cat(parts).to(torch::kFloat);
  const auto v_pos = (1 - beta) * v_old + beta * v;
  const auto v_neg = (1 + beta) * v_old - beta * v;
  const auto pos = (v_pos - u).pow(2).flatten(1).mean(1);
  const auto neg = (v_neg - u).pow(2).flatten(1).mean(1);
  NftSums out;
  out.loss = (r * pos + (1 - r) * neg).sum();
  if (items.v_ref.defined())
    out.kl = (v - items.v_ref.index_select(0, idx).to(device)).pow(2).flatten(1).mean(1).sum();
  return out;
}

}  // namespace treerpo::training
