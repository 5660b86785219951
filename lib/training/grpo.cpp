// grpo.cpp -- GRPO with reward-conditioned clipping and LayerTuning-RL on tree edges.
#include "training/grpo.hpp"

#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <tuple>
#include <nlohmann/json.hpp>

#include "advantage/edge_advantages.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "core/rng.hpp"
#include "flow/noise.hpp"
#include "flow/step.hpp"
#include "training/nft.hpp"
#include "training/sft.hpp"

namespace treerpo::training {
namespace {
// The tensors and settings of one input that every minibatch needs.
struct Prepared {
  const format::Trajectory* t = nullptr;
  std::string name;
  model::Conditioning cond;  // [P] rows, CPU
  double guidance = 1.0;
  flow::Kernel kernel = flow::Kernel::flowgrpo;
  std::int64_t noise_block = 1;
  flow::Reduction reduction = flow::Reduction::mean;
  std::vector<std::int64_t> shape;  // [C, H, W]
};

// Rows `idx` of an [N, C, H, W] float array as a tensor.
torch::Tensor gather_rows(const format::FloatArray& a, const std::vector<std::int64_t>& idx,
                          const std::vector<std::int64_t>& shape) {
  std::int64_t row = 1;
  for (auto s : shape) row *= s;
  std::vector<std::int64_t> full{static_cast<std::int64_t>(idx.size())};
  full.insert(full.end(), shape.begin(), shape.end());
  auto out = torch::empty(full, torch::kFloat);
  auto* dst = out.data_ptr<float>();
  for (std::size_t i = 0; i < idx.size(); ++i)
    std::copy_n(a.data.data() + idx[i] * row, row, dst + static_cast<std::int64_t>(i) * row);
  return out;
}

// One item of the supervised term: a (prompt, layer) of the best-leaf target or a node on the
// best leaf's path of the velocity target.
struct SftItem {
  std::int32_t input = 0;
  std::int64_t prompt = 0;
  std::int32_t layer = 0;
  std::int64_t source = 0;  // leaf (best-leaf) or node (velocity)
  double weight = 1;
};

// The loss terms whose gradients are reported apart.
enum Term : std::size_t { kGrpo = 0, kSft = 1, kKl = 2 };
constexpr std::size_t kTerms = 3;

// The gradient of each loss term apart, accumulated over the minibatches of an optimizer step
// and summed over ranks, so that their norms and shares can be reported; their sum is the
// gradient the optimizer steps with. Each enabled term holds one copy of the trainable
// parameters' gradients; with a single term that buffer becomes .grad itself (no extra copy).
class TermGradients {
 public:
  struct Norms {
    std::array<double, kTerms> norm{-1, -1, -1};
    std::array<double, kTerms> share{NAN, NAN, NAN};
  };

  TermGradients(std::vector<torch::Tensor> params, std::array<bool, kTerms> enabled)
      : params_(std::move(params)), enabled_(enabled) {}

  // Back-propagates each term (times `scale`) on its own and adds its gradient to its buffer.
  void accumulate(const std::array<torch::Tensor, kTerms>& term, double scale) {
    std::vector<std::size_t> live;
    for (std::size_t k = 0; k < kTerms; ++k)
      if (term[k].defined() && term[k].requires_grad()) live.push_back(k);
    for (std::size_t i = 0; i < live.size(); ++i) {
      const auto k = live[i];
      // GRPO and KL share the forward pass: keep the graph until the last term is done.
      const auto g = torch::autograd::grad({term[k] * scale}, params_, {}, /*retain_graph=*/i + 1 < live.size(),
                                           /*create_graph=*/false, /*allow_unused=*/true);
      auto& b = buffer(k);
      for (std::size_t j = 0; j < params_.size(); ++j)
        if (g[j].defined()) b[j].add_(g[j]);
    }
  }

  // Sums the buffers over ranks, puts their total into .grad and measures the terms.
  Norms finish(Communicator& comm) {
    std::vector<torch::Tensor> all;  // every enabled term's buffers, in one collective
    for (std::size_t k = 0; k < kTerms; ++k)
      if (enabled_[k]) {
        auto& b = buffer(k);
        all.insert(all.end(), b.begin(), b.end());
      }
    comm.sum(all);
    double total_sq = 0;
    std::array<double, kTerms> sq{0, 0, 0}, dot{0, 0, 0};
    for (std::size_t j = 0; j < params_.size(); ++j) {
      torch::Tensor total;
      for (std::size_t k = 0; k < kTerms; ++k)
        if (enabled_[k]) total = total.defined() ? total + buffer(k)[j] : buffer(k)[j];
      if (!total.defined()) total = torch::zeros_like(params_[j]);
      params_[j].mutable_grad() = total;  // one term: its buffer itself, no copy
      const auto t64 = total.to(torch::kDouble);
      total_sq += t64.pow(2).sum().item<double>();
      for (std::size_t k = 0; k < kTerms; ++k)
        if (enabled_[k]) {
          const auto b64 = buffer(k)[j].to(torch::kDouble);
          sq[k] += b64.pow(2).sum().item<double>();
          dot[k] += (b64 * t64).sum().item<double>();
        }
    }
    Norms n;
    for (std::size_t k = 0; k < kTerms; ++k)
      if (enabled_[k]) {
        n.norm[k] = std::sqrt(sq[k]);
        n.share[k] = total_sq > 0 && std::isfinite(total_sq) ? dot[k] / total_sq : NAN;
      }
    return n;
  }

  // After the optimizer step: the next step's gradients start from zero.
  void reset() {
    for (auto& b : buffers_)
      for (auto& t : b) t.zero_();
  }

 private:
  std::vector<torch::Tensor>& buffer(std::size_t k) {
    auto& b = buffers_[k];
    if (b.empty())
      for (auto& p : params_) b.push_back(torch::zeros_like(p));
    return b;
  }

  std::vector<torch::Tensor> params_;
  std::array<bool, kTerms> enabled_;
  std::array<std::vector<torch::Tensor>, kTerms> buffers_;
};

// [begin, end) of the share of rank r among `world` of a range of n items starting at `first`.
std::pair<std::int64_t, std::int64_t> share(std::int64_t first, std::int64_t n, int rank, int world) {
  return {first + n * rank / world, first + n * (rank + 1) / world};
}
}  // namespace

const char* objective_name(RlObjective o) {
  switch (o) {
    case RlObjective::grpo: return "grpo";
    case RlObjective::layertuning: return "layertuning";
    case RlObjective::nft: return "nft";
  }
  return "?";
}

const char* sft_target_name(SftTarget t) {
  switch (t) {
    case SftTarget::best_leaf: return "best-leaf";
    case SftTarget::velocity: return "velocity";
    case SftTarget::dataset: return "dataset";
  }
  return "?";
}

double lambda_at(LambdaSchedule schedule, double lambda0, std::int64_t iterations, std::int64_t iteration) {
  const double t =
      iterations > 0 ? std::clamp(static_cast<double>(iteration) / static_cast<double>(iterations), 0.0, 1.0) : 1.0;
  switch (schedule) {
    case LambdaSchedule::linear: return lambda0 * (1.0 - t);
    case LambdaSchedule::cosine: return lambda0 * 0.5 * (1.0 + std::cos(M_PI * t));
    case LambdaSchedule::constant: break;
  }
  return lambda0;
}

Surrogate clipped_surrogate(const torch::Tensor& log_prob, const torch::Tensor& old_log_prob,
                            const torch::Tensor& advantage, double eta, double e_low, double e_high) {
  Surrogate s;
  const auto rho = torch::exp(log_prob - old_log_prob);
  const auto g = torch::clamp(torch::exp(eta * advantage), 0.5, 2.0);
  const auto low = 1.0 - e_low * g, high = 1.0 + e_high * g;
  const auto clipped_rho = torch::min(torch::max(rho, low), high);
  s.loss = torch::max(-advantage * rho, -advantage * clipped_rho);
  s.ratio = rho.detach();
  s.outside = (s.ratio < low) | (s.ratio > high);
  // Clipping changes the gradient only where the bounded branch wins and is flat: above the upper
  // bound with A > 0, below the lower one with A < 0 (PPO implementations count these).
  const auto a = advantage.detach();
  s.clipped = ((a > 0) & (s.ratio > high)) | ((a < 0) & (s.ratio < low));
  return s;
}

torch::Tensor training_velocity(model::Policy& policy, const torch::Tensor& x, const torch::Tensor& sigma,
                                const model::Conditioning& cond, double guidance, std::int64_t max_rows,
                                bool train_uncond) {
  if (guidance == 1.0 || train_uncond) return model::guided_velocity(policy, x, sigma, cond, guidance, max_rows);
  // model::guided_velocity's chunks and arithmetic, with v_u detached (Flow-GRPO).
  if (max_rows < 1) throw std::invalid_argument("max batch must be >= 1");
  const auto chunk = std::max<std::int64_t>(1, max_rows / 2);
  const auto B = x.size(0);
  const auto device = x.device();
  const auto sigma_rows = sigma.to(device, torch::kFloat);
  std::vector<torch::Tensor> parts;
  for (std::int64_t b = 0; b < B; b += chunk) {
    const auto e = std::min(B, b + chunk), n = e - b;
    auto c = cond.slice(b, e);
    c = model::Conditioning::cat({c, policy.null_conditioning(n, c)});
    const auto xs = torch::cat({x.slice(0, b, e), x.slice(0, b, e)});
    const auto ss = torch::cat({sigma_rows.slice(0, b, e), sigma_rows.slice(0, b, e)});
    const auto v = policy.velocity(xs, ss, c.to(device)).to(torch::kFloat);
    const auto vu = v.slice(0, n, 2 * n).detach();
    parts.push_back(vu + guidance * (v.slice(0, 0, n) - vu));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts);
}

std::vector<Edge> trainable_edges(const std::vector<RlInput>& inputs) {
  std::vector<Edge> edges;
  for (std::size_t f = 0; f < inputs.size(); ++f) {
    const auto& t = *inputs[f].trajectory;
    const auto& name = inputs[f].name;
    if (!t.advantages) throw DataError(name + ": no /advantages: run `advantage` on it before `update`");
    const auto& n = t.nodes;
    const auto& r = t.rollout;
    const std::size_t before = edges.size();
    for (std::size_t i = 0; i < n.size(); ++i) {
      const float a = t.advantages->edge[i];
      if (!std::isfinite(a)) continue;
      const auto p = n.parent[i];
      const std::string where = name + ": node " + std::to_string(i) + " has an advantage but ";
      if (p < 0) throw DataError(where + "no parent (/nodes/parent)");
      if (!std::isfinite(n.log_prob[i])) throw DataError(where + "no stored log-probability (/nodes/log_prob)");
      if (!(n.noise_std[i] > 0)) throw DataError(where + "a deterministic step (/nodes/noise_std = 0)");
      const auto step = n.step[static_cast<std::size_t>(p)];
      const auto layer = step - r.window_start;
      if (n.step[i] != step + 1 || layer < 0 || layer >= static_cast<std::int64_t>(r.noise_levels.size()))
        throw DataError(where + "its step " + std::to_string(step) + " -> " + std::to_string(n.step[i]) +
                        " is not a step of the window at " + std::to_string(r.window_start) + " (/nodes/step)");
      Edge e;
      e.input = static_cast<std::int32_t>(f);
      e.parent = p;
      e.child = static_cast<std::int64_t>(i);
      e.prompt = n.prompt[i];
      e.step = step;
      e.level = r.noise_levels[static_cast<std::size_t>(layer)];
      e.advantage = a;
      e.old_log_prob = n.log_prob[i];
      edges.push_back(e);
    }
    if (edges.size() == before) throw DataError(name + ": /advantages/edge: no finite advantage on any edge");
  }
  return edges;
}

std::vector<double> leaf_advantages(const format::Trajectory& t, const std::string& name) {
  advantage::Forest forest;
  forest.parent = t.nodes.parent;
  forest.prompt = t.nodes.prompt;
  forest.depth = t.nodes.depth;
  forest.leaf_node = t.leaves.node;
  forest.prompts = t.prompts.text.size();
  // The normalisation `advantage` recorded: the best leaf and its A* follow the options it was
  // given (--aggregate, --std, --eps, --min-std, --clip, --reward, --weight), not the defaults.
  advantage::Settings settings;
  settings.rule = advantage::Rule::leaf;
  std::map<std::string, double> weights;  // the rewards advantage used and their weights
  if (t.advantages) {
    const std::string where = name + ": /advantages attribute settings: ";
    const auto j = nlohmann::json::parse(t.advantages->settings, nullptr, false);
    if (!j.is_object()) throw DataError(where + "not a JSON object");
    try {
      if (j.contains("aggregate"))
        settings.aggregate = advantage::parse_aggregate(j.at("aggregate").get<std::string>());
      if (j.contains("std")) {
        const auto kind = j.at("std").get<std::string>();
        if (kind != "population" && kind != "sample")
          throw std::invalid_argument("std is '" + kind + "' (population or sample)");
        settings.sample_std = kind == "sample";
      }
      if (j.contains("eps")) settings.eps = j.at("eps").get<double>();
      if (j.contains("min_std")) settings.min_std = j.at("min_std").get<double>();
      if (j.contains("clip")) settings.clip = j.at("clip").get<double>();
      if (j.contains("weights"))
        for (const auto& [reward, w] : j.at("weights").items()) weights[reward] = w.get<double>();
    } catch (const std::exception& e) {
      throw DataError(where + e.what());
    }
  }
  std::vector<advantage::RewardInput> rewards;
  for (const auto& r : t.rewards) {
    if (!weights.empty() && !weights.count(r.name)) continue;  // not among the rewards advantage used
    advantage::RewardInput in{r.name, weights.empty() ? r.weight : weights.at(r.name), {}};
    for (std::size_t g = 0; g < r.values.size(); ++g) {
      if (!std::isfinite(r.values[g]))
        throw DataError(name + ": /rewards/" + r.name + ": leaf " + std::to_string(g) + " is " +
                        std::to_string(r.values[g]) + " (a finite reward expected)");
      in.values.push_back(r.values[g]);
    }
    rewards.push_back(std::move(in));
  }
  if (rewards.empty()) return {};
  advantage::Result result;
  try {
    result = advantage::compute(forest, rewards, settings);
  } catch (const std::invalid_argument& e) {
    throw DataError(name + ": " + e.what());
  }
  std::vector<double> leaf(t.leaves.size());
  for (std::size_t g = 0; g < t.leaves.size(); ++g) leaf[g] = result.edge[static_cast<std::size_t>(t.leaves.node[g])];
  return leaf;
}

std::vector<BestLeaf> best_leaves(const format::Trajectory& t, const std::string& name) {
  std::vector<BestLeaf> best(t.prompts.text.size());
  const auto adv = leaf_advantages(t, name);
  for (std::size_t g = 0; g < adv.size(); ++g) {
    const auto p = static_cast<std::size_t>(t.leaves.prompt[g]);
    const double a = adv[g];
    if (!std::isfinite(a)) continue;
    if (best[p].leaf < 0 || a > best[p].advantage) best[p] = {static_cast<std::int64_t>(g), a};
  }
  return best;
}

std::int64_t rl_units(const std::vector<RlInput>& inputs, const RlConfig& c) {
  if (c.objective == RlObjective::nft) return count_nft_items(inputs, c.nft_timesteps);
  return static_cast<std::int64_t>(trainable_edges(inputs).size());
}

namespace {
// Everything the minibatches of one update share: the inputs' tensors and settings, the
// trainable edges, the supervised term's items or data set, and the keys.
struct RlPlan {
  std::vector<Prepared> inputs;
  std::vector<Edge> edges;
  std::vector<SftItem> items;    // best-leaf and velocity targets: fixed per update
  model::Conditioning data_cond; // dataset target: the pairs' prompts and images as latents
  torch::Tensor data_x0;
  NftItems nft_items;            // the NFT objective's leaves: its minibatches count these, not edges
  bool layertuning = false, nft = false;
  double sft_weight = 0;         // the supervised term's weight in the loss: lambda_j, 1 for NFT, 0 for GRPO
  torch::Device device = torch::kCPU;
  std::vector<std::int64_t> shape;  // [C, H, W]
  std::uint64_t iteration = 0;
};

// The tensors and settings of each input. \throws DataError naming the file
std::vector<Prepared> prepare_inputs(model::Policy& policy, const std::vector<RlInput>& inputs) {
  std::vector<Prepared> prepared;
  const auto shape = policy.latent_shape();
  for (const auto& in : inputs) {
    const auto& t = *in.trajectory;
    Prepared p;
    p.t = &t;
    p.name = in.name;
    if (t.rollout.latent_shape != shape)
      throw DataError(in.name + ": /rollout latent_shape " + shape_text(t.rollout.latent_shape) +
                      " differs from the policy's " + shape_text(shape));
    p.shape = shape;
    p.cond = model::conditioning_for(policy, t.prompts, 0, t.prompts.text.size(), in.name);
    p.guidance = t.rollout.guidance;
    try {
      p.kernel = flow::parse_kernel(t.rollout.kernel);
      p.noise_block = t.rollout.noise_block;
      p.reduction = flow::parse_reduction(t.rollout.logprob_reduction);
    } catch (const std::invalid_argument& e) {
      throw DataError(in.name + ": /rollout: " + e.what());
    }
    prepared.push_back(std::move(p));
  }
  return prepared;
}

// The supervised term's items of the best-leaf and velocity targets: for each prompt with a
// winner, every tree layer of its best leaf (best-leaf) or every window node on its path
// (velocity), weighted by w_k and the best leaf's advantage.
std::vector<SftItem> sft_items(const std::vector<Prepared>& inputs, const RlConfig& c) {
  std::vector<SftItem> items;
  for (std::size_t f = 0; f < inputs.size(); ++f) {
    const auto& t = *inputs[f].t;
    const auto& name = inputs[f].name;
    const auto d = static_cast<std::int64_t>(t.rollout.noise_levels.size());
    if (c.sft_target == SftTarget::velocity && !t.nodes.velocity)
      throw DataError(name + ": no /nodes/velocity: the velocity target needs `tree-rollout --velocity`");
    if (t.rewards.empty()) throw DataError(name + ": no /rewards: the SFT term needs the best leaf");
    auto layer_weight = [&](std::int64_t k) {
      return c.layer_weights.empty() ? 1.0 : c.layer_weights.at(static_cast<std::size_t>(k));
    };
    const auto best = best_leaves(t, name);
    for (std::size_t p = 0; p < best.size(); ++p) {
      if (best[p].leaf < 0) continue;
      const double a = c.advantage_weighting ? best[p].advantage : 1.0;
      if (a == 0) continue;  // a group without a winner teaches nothing
      if (!c.layer_weights.empty() && static_cast<std::int64_t>(c.layer_weights.size()) != d)
        throw UsageError("the layer weights are " + std::to_string(c.layer_weights.size()) + " values but " + name +
                         " has " + std::to_string(d) + " tree layers");
      const auto input = static_cast<std::int32_t>(f);
      const auto prompt = static_cast<std::int64_t>(p);
      if (c.sft_target == SftTarget::best_leaf) {
        for (std::int64_t k = 0; k < d; ++k)
          items.push_back({input, prompt, static_cast<std::int32_t>(k), best[p].leaf, layer_weight(k) * a});
        continue;
      }
      // velocity: the window nodes on the path from the root to the best leaf
      const auto leaf_node = t.leaves.node[static_cast<std::size_t>(best[p].leaf)];
      for (auto node = t.nodes.parent[static_cast<std::size_t>(leaf_node)]; node >= 0;
           node = t.nodes.parent[static_cast<std::size_t>(node)]) {
        const auto k = t.nodes.step[static_cast<std::size_t>(node)] - t.rollout.window_start;
        if (k < 0 || k >= d) continue;
        items.push_back({input, prompt, static_cast<std::int32_t>(k), node, layer_weight(k) * a});
      }
    }
  }
  return items;
}

// Checks the configuration and prepares what every minibatch needs. \throws DataError, UsageError
RlPlan prepare(model::Policy& policy, model::Policy* reference, const std::vector<RlInput>& inputs,
               const format::Dataset* sft_data, const RlConfig& c) {
  if (c.minibatch < 1 || c.epochs < 1 || c.grad_accum < 1)
    throw UsageError("minibatch, epochs and gradient accumulation must be >= 1");
  if (c.kl_weight > 0 && !reference) throw UsageError("the KL term needs a reference policy");
  RlPlan plan;
  plan.layertuning = c.objective == RlObjective::layertuning;
  plan.nft = c.objective == RlObjective::nft;
  plan.sft_weight = plan.layertuning ? c.lambda : plan.nft ? 1.0 : 0.0;
  plan.device = policy.placement().device;
  plan.shape = policy.latent_shape();
  plan.iteration = static_cast<std::uint64_t>(c.iteration);
  plan.inputs = prepare_inputs(policy, inputs);
  if (plan.nft) {
    plan.nft_items = nft_items(policy, c.kl_weight > 0 ? reference : nullptr, inputs, c);
    if (plan.nft_items.size() == 0) throw DataError(inputs.front().name + ": no leaf with a finite advantage to train on");
    return plan;
  }
  plan.edges = trainable_edges(inputs);
  if (!plan.layertuning) return plan;
  if (c.sft_target != SftTarget::dataset) {
    plan.items = sft_items(plan.inputs, c);
    return plan;
  }
  if (!sft_data) throw UsageError("the dataset target needs a data set file");
  const auto& im = sft_data->images.shape;
  if (plan.shape !=
      std::vector<std::int64_t>{3, static_cast<std::int64_t>(im.at(1)), static_cast<std::int64_t>(im.at(2))})
    throw DataError("the SFT data set's images do not match the policy's latents " + shape_text(plan.shape));
  plan.data_cond = model::conditioning_for(policy, sft_data->prompts, 0, sft_data->prompts.text.size(), "SFT data set");
  plan.data_x0 = images_to_latents(sft_data->images);
  return plan;
}

// Which edges and supervised items minibatch m of an epoch holds, and this rank's share of each.
struct MinibatchShare {
  std::int64_t n_edges = 0, e_begin = 0, e_end = 0;         // positions in the epoch's edge order
  std::int64_t n_items = 0, i_begin = 0, i_end = 0;         // in the item order, or dataset draws
};

MinibatchShare minibatch_share(const RlPlan& plan, const RlConfig& c, std::int64_t m, std::int64_t per_epoch,
                               int rank, int world) {
  MinibatchShare s;
  if (plan.nft) {  // NFT minibatches hold items alone, c.minibatch of them
    const auto lo = m * c.minibatch;
    s.n_items = std::min(plan.nft_items.size(), lo + c.minibatch) - lo;
    std::tie(s.i_begin, s.i_end) = share(lo, s.n_items, rank, world);
    return s;
  }
  const auto E = static_cast<std::int64_t>(plan.edges.size());
  const auto I = static_cast<std::int64_t>(plan.items.size());
  const std::int64_t lo = m * c.minibatch;
  s.n_edges = std::min(E, lo + c.minibatch) - lo;
  std::tie(s.e_begin, s.e_end) = share(lo, s.n_edges, rank, world);
  const bool dataset = c.sft_target == SftTarget::dataset;
  const std::int64_t item_lo = m * I / per_epoch;
  s.n_items = dataset && plan.layertuning ? c.sft_batch : (m + 1) * I / per_epoch - item_lo;
  std::tie(s.i_begin, s.i_end) = share(dataset ? 0 : item_lo, s.n_items, rank, world);
  return s;
}

// The GRPO term's per-edge tensors of a minibatch share, concatenated.
struct EdgeTerms {
  std::vector<torch::Tensor> log_prob, old_log_prob, advantage, kl;
};

// One forward pass per input over the edges `ids`, then the step kernel per (step, level).
void edge_terms(model::Policy& policy, model::Policy* reference, const RlPlan& plan, const RlConfig& c,
                const Prepared& P, const std::vector<std::int64_t>& ids, EdgeTerms& out) {
  const auto& t = *P.t;
  std::vector<std::int64_t> parents, children, prompts;
  std::vector<float> sig;
  for (auto id : ids) {
    const auto& e = plan.edges[static_cast<std::size_t>(id)];
    parents.push_back(e.parent);
    children.push_back(e.child);
    prompts.push_back(e.prompt);
    sig.push_back(static_cast<float>(t.rollout.sigmas[static_cast<std::size_t>(e.step)]));
  }
  const auto x = gather_rows(t.nodes.latent, parents, P.shape).to(plan.device);
  const auto x_next = gather_rows(t.nodes.latent, children, P.shape).to(plan.device);
  const auto sigma = torch::tensor(sig);
  const auto cond = P.cond.index_select(torch::tensor(prompts));
  const auto v = training_velocity(policy, x, sigma, cond, P.guidance, c.max_rows, c.train_uncond);
  torch::Tensor v_ref;
  if (c.kl_weight > 0) {
    torch::NoGradGuard no_grad;
    v_ref = model::guided_velocity(*reference, x, sigma, cond, P.guidance, c.max_rows);
  }
  // The step kernel per (step, level): rows of one schedule step share their sigmas.
  std::map<std::pair<std::int32_t, double>, std::vector<std::int64_t>> by_step;
  for (std::size_t j = 0; j < ids.size(); ++j) {
    const auto& e = plan.edges[static_cast<std::size_t>(ids[j])];
    by_step[{e.step, e.level}].push_back(static_cast<std::int64_t>(j));
  }
  for (const auto& [key, rows] : by_step) {
    const auto r = torch::tensor(rows).to(plan.device);
    const auto& sg = t.rollout.sigmas;
    const flow::StepSigmas s{sg[static_cast<std::size_t>(key.first)], sg[static_cast<std::size_t>(key.first) + 1],
                             sg[1]};
    const auto tr =
        flow::transition(P.kernel, x.index_select(0, r), v.index_select(0, r), s, key.second, P.noise_block);
    out.log_prob.push_back(flow::log_prob(x_next.index_select(0, r), tr, P.reduction));
    std::vector<double> old;
    std::vector<float> adv;
    for (auto j : rows) {
      const auto& e = plan.edges[static_cast<std::size_t>(ids[static_cast<std::size_t>(j)])];
      old.push_back(e.old_log_prob);
      adv.push_back(e.advantage);
    }
    // float64 explicitly: torch::tensor of doubles takes the default dtype, float32.
    out.old_log_prob.push_back(torch::tensor(old, torch::kDouble).to(plan.device));
    out.advantage.push_back(torch::tensor(adv).to(plan.device));
    if (c.kl_weight > 0) {
      const auto tr_ref = flow::transition(P.kernel, x.index_select(0, r), v_ref.index_select(0, r), s, key.second,
                                           P.noise_block);
      // KL of the two Gaussians along the directions the noise spans (all of them for block 1).
      const auto gap = flow::block_coordinates(tr.mean - tr_ref.mean, P.noise_block);
      out.kl.push_back(gap.pow(2).flatten(1).mean(1) / (2.0 * tr.std * tr.std));
    }
  }
}

// The GRPO (and KL) tensors of this rank's edges, grouped by input in input order.
EdgeTerms grpo_terms(model::Policy& policy, model::Policy* reference, const RlPlan& plan, const RlConfig& c,
                     const std::vector<std::int64_t>& edge_order, const MinibatchShare& s) {
  std::map<std::int32_t, std::vector<std::int64_t>> by_input;
  for (auto k = s.e_begin; k < s.e_end; ++k) {
    const auto id = edge_order[static_cast<std::size_t>(k)];
    by_input[plan.edges[static_cast<std::size_t>(id)].input].push_back(id);
  }
  EdgeTerms out;
  for (const auto& [f, ids] : by_input)
    edge_terms(policy, reference, plan, c, plan.inputs[static_cast<std::size_t>(f)], ids, out);
  return out;
}

// The dataset target: fresh pairs, sigma and noise keyed by (iteration, minibatch, item); the
// sum over this rank's draws of the flow-matching loss.
torch::Tensor sft_dataset_sum(model::Policy& policy, const RlPlan& plan, const RlConfig& c, std::int64_t global_m,
                              const MinibatchShare& s) {
  const auto N = plan.data_x0.size(0);
  std::vector<std::int64_t> idx;
  std::vector<float> sg;
  std::vector<torch::Tensor> noise;
  for (auto j = s.i_begin; j < s.i_end; ++j) {
    rng::NormalStream r(
        rng::derive_key(c.seed, rng::Domain::sft_dataset,
                        {plan.iteration, static_cast<std::uint64_t>(global_m), static_cast<std::uint64_t>(j)}));
    idx.push_back(static_cast<std::int64_t>(r.next_u64() % static_cast<std::uint64_t>(N)));
    sg.push_back(static_cast<float>(r.next_uniform()));
    noise.push_back(flow::keyed_normal(r.next_u64(), plan.shape));
  }
  const auto rows = torch::tensor(idx);
  const auto loss = flow_matching_loss(policy, plan.data_x0.index_select(0, rows), torch::stack(noise),
                                       torch::tensor(sg), plan.data_cond.index_select(rows));
  return loss * static_cast<double>(s.i_end - s.i_begin);
}

// The best-leaf and velocity targets: the weighted regression summed over the items `ids` of one input.
torch::Tensor sft_rollout_sum(model::Policy& policy, const RlPlan& plan, const RlConfig& c, const Prepared& P,
                              const std::vector<std::int64_t>& ids) {
  const auto& t = *P.t;
  const auto& shape = plan.shape;
  std::vector<std::int64_t> src, prompts;
  std::vector<float> sg, w;
  std::vector<torch::Tensor> noise;
  const bool best_leaf = c.sft_target == SftTarget::best_leaf;
  for (auto id : ids) {
    const auto& it = plan.items[static_cast<std::size_t>(id)];
    src.push_back(it.source);
    prompts.push_back(it.prompt);
    w.push_back(static_cast<float>(it.weight));
    if (best_leaf) {
      sg.push_back(static_cast<float>(t.rollout.sigmas[static_cast<std::size_t>(t.rollout.window_start + it.layer)]));
      const auto prompt_id = static_cast<std::uint64_t>(t.prompts.id[static_cast<std::size_t>(it.prompt)]);
      noise.push_back(
          flow::keyed_normal(rng::derive_key(c.seed, rng::Domain::sft_target,
                                             {plan.iteration, prompt_id, static_cast<std::uint64_t>(it.layer)}),
                             shape));
    } else {
      sg.push_back(static_cast<float>(
          t.rollout.sigmas[static_cast<std::size_t>(t.nodes.step[static_cast<std::size_t>(it.source)])]));
    }
  }
  const auto cond = P.cond.index_select(torch::tensor(prompts));
  const auto weight = torch::tensor(w).to(plan.device);
  if (best_leaf && (c.sft_velocity == SftVelocity::conditional || P.guidance == 1.0)) {
    const auto x0 = gather_rows(t.leaves.latent, src, shape);
    const auto n = static_cast<double>(ids.size());
    return flow_matching_loss(policy, x0, torch::stack(noise), torch::tensor(sg), cond, weight) * n;
  }
  if (best_leaf) {
    // The same regression on the velocity under the rollout's guidance, the one the best leaf
    // was sampled with (SftVelocity::guided).
    const auto x0 = gather_rows(t.leaves.latent, src, shape);
    const auto e = torch::stack(noise);
    std::vector<std::int64_t> view(static_cast<std::size_t>(x0.dim()), 1);
    view[0] = -1;
    const auto s = torch::tensor(sg).view(view);
    const auto x_k = ((1 - s) * x0 + s * e).to(plan.device);
    const auto v = training_velocity(policy, x_k, torch::tensor(sg), cond, P.guidance, c.max_rows, c.train_uncond);
    return ((v - (e - x0).to(plan.device)).pow(2).flatten(1).mean(1) * weight).sum();
  }
  const auto x = gather_rows(t.nodes.latent, src, shape).to(plan.device);
  const auto target = gather_rows(*t.nodes.velocity, src, shape).to(plan.device);
  const auto v = training_velocity(policy, x, torch::tensor(sg), cond, P.guidance, c.max_rows, c.train_uncond);
  return ((v - target).pow(2).flatten(1).mean(1) * weight).sum();
}

// The supervised term summed over this rank's items (undefined when it has none).
torch::Tensor sft_sum(model::Policy& policy, const RlPlan& plan, const RlConfig& c,
                      const std::vector<std::int64_t>& item_order, std::int64_t global_m, const MinibatchShare& s,
                      torch::Tensor& nft_kl) {
  if (plan.nft && s.i_end > s.i_begin) {
    std::vector<std::int64_t> rows(item_order.begin() + s.i_begin, item_order.begin() + s.i_end);
    auto sums = nft_loss_sum(policy, plan.nft_items, rows, c.nft_beta, c.max_rows);
    nft_kl = sums.kl;
    return sums.loss;
  }
  if (!plan.layertuning || s.i_end <= s.i_begin) return {};
  if (c.sft_target == SftTarget::dataset) return sft_dataset_sum(policy, plan, c, global_m, s);
  std::map<std::int32_t, std::vector<std::int64_t>> by_input;
  for (auto k = s.i_begin; k < s.i_end; ++k) {
    const auto id = item_order[static_cast<std::size_t>(k)];
    by_input[plan.items[static_cast<std::size_t>(id)].input].push_back(id);
  }
  torch::Tensor sum;
  for (const auto& [f, ids] : by_input) {
    auto part = sft_rollout_sum(policy, plan, c, plan.inputs[static_cast<std::size_t>(f)], ids);
    sum = sum.defined() ? sum + part : part;
  }
  return sum;
}

// The sums of one minibatch's metrics over this rank's share, then over all ranks.
struct MinibatchSums {
  double grpo = 0;       // sum of the surrogate loss
  double ratio_dev = 0;  // sum of |rho - 1|
  double clipped = 0;    // edges whose gradient clipping removed
  double approx_kl = 0;  // sum of (l_old - l_theta)
  double kl = 0;         // sum of the KL term
  double sft = 0;        // sum of the supervised term
  double edges = 0, items = 0;
  double outside = 0;    // edges with rho outside their bounds
  double max_dev = 0;    // max |rho - 1|

  // Sums over ranks; a non-finite deviation fails the replay check on every rank (a max may drop a NaN).
  void reduce(Communicator& comm) {
    std::vector<double> v{grpo, ratio_dev, clipped, approx_kl, kl, sft, edges, items, outside};
    comm.sum(v);
    grpo = v[0], ratio_dev = v[1], clipped = v[2], approx_kl = v[3], kl = v[4], sft = v[5], edges = v[6],
    items = v[7], outside = v[8];
    max_dev = comm.max(std::isfinite(max_dev) ? max_dev : INFINITY);
  }
};

// The loss terms of this rank's share, normalised by the minibatch's global counts and weighted
// as in the loss (L_grpo, lambda L_sft, beta_kl L_kl), and their metric sums.
std::array<torch::Tensor, kTerms> loss_terms(const EdgeTerms& g, const torch::Tensor& sft, const torch::Tensor& nft_kl,
                                             const RlConfig& c, double sft_weight, const MinibatchShare& s,
                                             MinibatchSums& sums) {
  std::array<torch::Tensor, kTerms> term;
  if (!g.log_prob.empty()) {
    const auto lp = torch::cat(g.log_prob), old = torch::cat(g.old_log_prob), adv = torch::cat(g.advantage);
    const auto sur = clipped_surrogate(lp, old, adv, c.eta, c.clip_low, c.clip_high);
    term[kGrpo] = sur.loss.sum() / static_cast<double>(s.n_edges);
    sums.grpo = sur.loss.sum().item<double>();
    const auto dev = (sur.ratio - 1).abs();
    sums.ratio_dev = dev.sum().item<double>();
    sums.max_dev = dev.max().item<double>();
    sums.clipped = sur.clipped.sum().item<double>();
    sums.approx_kl = (old - lp.detach()).sum().item<double>();
    sums.edges = static_cast<double>(lp.size(0));
    sums.outside = sur.outside.sum().item<double>();
    if (c.kl_weight > 0) {
      const auto kl = torch::cat(g.kl).sum();
      term[kKl] = c.kl_weight * kl / static_cast<double>(s.n_edges);
      sums.kl = kl.item<double>();
    }
  }
  if (sft.defined()) {
    term[kSft] = sft_weight * sft / static_cast<double>(s.n_items);
    sums.sft = sft.item<double>();
    sums.items = static_cast<double>(s.i_end - s.i_begin);
  }
  if (nft_kl.defined()) {  // NFT's KL term: per item, like its loss
    term[kKl] = c.kl_weight * nft_kl / static_cast<double>(s.n_items);
    sums.kl = nft_kl.item<double>();
  }
  return term;
}

// A minibatch's metrics from its sums over all ranks.
MinibatchMetrics metrics_of(const MinibatchSums& t, const RlConfig& c, const RlPlan& plan, std::int64_t n_items) {
  MinibatchMetrics mm;
  mm.edges = static_cast<std::int64_t>(t.edges);
  mm.sft_items = static_cast<std::int64_t>(t.items);
  const double ne = std::max(1.0, t.edges);
  mm.loss_grpo = t.grpo / ne;
  mm.ratio_dev = t.ratio_dev / ne;
  mm.max_ratio_dev = t.max_dev;
  mm.clip_fraction = t.clipped / ne;
  mm.outside_fraction = t.outside / ne;
  mm.approx_kl = t.approx_kl / ne;
  mm.loss_kl = t.kl / (plan.nft ? std::max(1.0, t.items) : ne);
  mm.loss_sft = n_items > 0 ? t.sft / static_cast<double>(n_items) : 0.0;
  mm.lambda = plan.layertuning ? c.lambda : 0.0;
  mm.loss = mm.loss_grpo + plan.sft_weight * mm.loss_sft + c.kl_weight * mm.loss_kl;
  return mm;
}

// The optimizer boundary: the accumulated gradient summed over ranks, clipped, stepped; the
// gradient norms and shares of each term go into the metrics.
void optimizer_step(TermGradients& grads, Optimizer& opt, Communicator& comm, const RlConfig& c, MinibatchMetrics& mm) {
  const auto norms = grads.finish(comm);  // the total into .grad, summed over ranks
  mm.grad_norm = opt.clip_grad_norm(c.grad_clip);
  mm.grad_norm_grpo = norms.norm[kGrpo];
  mm.grad_norm_sft = norms.norm[kSft];
  mm.grad_norm_kl = norms.norm[kKl];
  mm.grad_share_grpo = norms.share[kGrpo];
  mm.grad_share_sft = norms.share[kSft];
  mm.grad_share_kl = norms.share[kKl];
  opt.step();
  opt.zero_grad();
  grads.reset();
}
}  // namespace

RlResult train_rl(model::Policy& policy, model::Policy* reference, const std::vector<RlInput>& inputs,
                  const format::Dataset* sft_data, const RlConfig& c, OptimizerState state,
                  std::int64_t start_minibatch, Communicator& comm, const std::function<void(double)>& on_replay,
                  const std::function<bool(const MinibatchMetrics&)>& on_minibatch) {
  auto plan = prepare(policy, reference, inputs, sft_data, c);
  // NFT's v_old is the policy's before the update: a run resumed mid-update takes it from the
  // checkpoint that stopped, not from the weights that have moved since.
  const std::string kNftOld = "nft.v_old";
  if (plan.nft && start_minibatch > 0) {
    const auto it = state.tensors.find(kNftOld);
    if (it == state.tensors.end() || !it->second.sizes().equals(plan.nft_items.v_old.sizes()))
      throw UsageError("the checkpoint stopped mid-update but holds no NFT old velocities for these inputs");
    plan.nft_items.v_old = it->second.to(torch::kFloat);
    state.tensors.erase(it);
  }
  const auto E = static_cast<std::int64_t>(plan.edges.size());
  const auto I = static_cast<std::int64_t>(plan.nft ? plan.nft_items.size() : plan.items.size());
  const auto units = plan.nft ? I : E;  // what c.minibatch counts

  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& [name, p] : policy.named_parameters())
    if (p.requires_grad()) params.emplace_back(name, p);
  Optimizer opt(params, c.adamw, state);
  opt.set_lr(c.adamw.lr);
  std::int64_t step = state.step;

  const std::int64_t per_epoch = (units + c.minibatch - 1) / c.minibatch;
  RlResult result;
  result.minibatches_total = per_epoch * c.epochs;
  result.minibatches_done = start_minibatch;
  const std::int64_t stop_at = c.until < 0 ? result.minibatches_total : std::min(c.until, result.minibatches_total);
  const int rank = comm.rank(), world = comm.world();

  opt.zero_grad();
  TermGradients grads(opt.parameters(), {!plan.nft, plan.layertuning || plan.nft, c.kl_weight > 0});
  bool stop = false;
  for (std::int64_t epoch = 0; epoch < c.epochs && !stop; ++epoch) {
    const auto epoch_key = static_cast<std::uint64_t>(epoch);
    const auto edge_order =
        rng::permutation(rng::derive_key(c.seed, rng::Domain::edge_order, {plan.iteration, epoch_key, 0}), E);
    const auto item_order =
        rng::permutation(rng::derive_key(c.seed, rng::Domain::edge_order, {plan.iteration, epoch_key, 1}), I);
    for (std::int64_t m = 0; m < per_epoch && !stop; ++m) {
      const std::int64_t global_m = epoch * per_epoch + m;
      if (global_m < start_minibatch) continue;
      const auto t0 = std::chrono::steady_clock::now();
      const auto share = minibatch_share(plan, c, m, per_epoch, rank, world);
      const auto edge_terms = grpo_terms(policy, reference, plan, c, edge_order, share);
      torch::Tensor nft_kl;
      const auto sft = sft_sum(policy, plan, c, item_order, global_m, share, nft_kl);
      MinibatchSums sums;
      const auto term = loss_terms(edge_terms, sft, nft_kl, c, plan.sft_weight, share, sums);
      sums.reduce(comm);
      if (global_m == 0 && on_replay && !plan.nft) on_replay(sums.max_dev);  // NFT replays no log-probability
      // Each minibatch's share of its optimizer step: 1 / (minibatches in its accumulation group).
      const std::int64_t group_first = global_m / c.grad_accum * c.grad_accum;
      const std::int64_t group_size = std::min(group_first + c.grad_accum, result.minibatches_total) - group_first;
      grads.accumulate(term, 1.0 / static_cast<double>(group_size));

      auto mm = metrics_of(sums, c, plan, share.n_items);
      mm.epoch = epoch;
      mm.minibatch = global_m + 1;
      // An optimizer step every grad_accum minibatches and at the end of the update.
      const bool boundary = (global_m + 1) % c.grad_accum == 0 || global_m + 1 == result.minibatches_total;
      if (boundary) {
        optimizer_step(grads, opt, comm, c, mm);
        ++step;
      }
      mm.step = step;
      mm.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      result.minibatches_done = global_m + 1;
      // Stop only where no gradient is half accumulated, so that a resumed run continues exactly.
      // A stop request on any rank stops every rank at the same minibatch.
      const bool keep_going = on_minibatch ? on_minibatch(mm) : true;
      if (boundary && (comm.max(keep_going ? 0.0 : 1.0) > 0 || result.minibatches_done >= stop_at)) stop = true;
    }
  }
  result.state = opt.state(step);
  if (plan.nft && result.minibatches_done < result.minibatches_total)
    result.state.tensors[kNftOld] = plan.nft_items.v_old;
  return result;
}

}  // namespace treerpo::training
