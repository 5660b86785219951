// grpo.cpp -- GRPO with reward-conditioned clipping and LayerTuning-RL on tree edges.
#include "training/grpo.hpp"

#include <torch/torch.h>

#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "advantage/edge_advantages.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "flow/step.hpp"
#include "rollout/tree_sampler.hpp"
#include "training/sft.hpp"

namespace treerpo::training {
namespace {
std::string shape_text(const std::vector<std::int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The tensors and settings of one input that every minibatch needs.
struct Prepared {
  const format::Trajectory* t = nullptr;
  std::string name;
  model::Conditioning cond;  // [P] rows, CPU
  double guidance = 1.0;
  flow::Kernel kernel = flow::Kernel::flowgrpo;
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

double lambda_at(const std::string& schedule, double lambda0, std::int64_t iterations, std::int64_t iteration) {
  const double t =
      iterations > 0 ? std::clamp(static_cast<double>(iteration) / static_cast<double>(iterations), 0.0, 1.0) : 1.0;
  if (schedule == "constant") return lambda0;
  if (schedule == "linear") return lambda0 * (1.0 - t);
  if (schedule == "cosine") return lambda0 * 0.5 * (1.0 + std::cos(M_PI * t));
  throw std::invalid_argument("unknown lambda schedule '" + schedule + "' (expected constant, linear or cosine)");
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

std::vector<BestLeaf> best_leaves(const format::Trajectory& t, const std::string& name) {
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
      if (j.contains("aggregate")) settings.aggregate = advantage::parse_aggregate(j.at("aggregate").get<std::string>());
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
  std::vector<BestLeaf> best(forest.prompts);
  if (rewards.empty()) return best;
  advantage::Result result;
  try {
    result = advantage::compute(forest, rewards, settings);
  } catch (const std::invalid_argument& e) {
    throw DataError(name + ": " + e.what());
  }
  for (std::size_t g = 0; g < t.leaves.size(); ++g) {
    const auto p = static_cast<std::size_t>(t.leaves.prompt[g]);
    const double a = result.edge[static_cast<std::size_t>(t.leaves.node[g])];
    if (!std::isfinite(a)) continue;
    if (best[p].leaf < 0 || a > best[p].advantage) best[p] = {static_cast<std::int64_t>(g), a};
  }
  return best;
}

RlResult train_rl(model::Policy& policy, model::Policy* reference, const std::vector<RlInput>& inputs,
                  const format::Dataset* sft_data, const RlConfig& c, OptimizerState state,
                  std::int64_t start_minibatch, Communicator& comm, const std::function<void(double)>& on_replay,
                  const std::function<bool(const MinibatchMetrics&)>& on_minibatch) {
  if (c.minibatch < 1 || c.epochs < 1 || c.grad_accum < 1) throw UsageError("minibatch, epochs and grad-accum must be >= 1");
  const bool layertuning = c.objective == "layertuning";
  if (!layertuning && c.objective != "grpo") throw UsageError("unknown RL objective '" + c.objective + "'");
  if (c.kl_weight > 0 && !reference) throw UsageError("the KL term needs a reference policy");
  const auto device = policy.placement().device;
  const auto shape = policy.latent_shape();

  std::vector<Prepared> prepared;
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
    const auto settings = nlohmann::json::parse(t.rollout.settings, nullptr, false);
    if (settings.is_object() && settings.contains("guidance") && settings["guidance"].is_number())
      p.guidance = settings["guidance"].get<double>();
    try {
      p.kernel = flow::parse_kernel(t.rollout.kernel);
      p.reduction = flow::parse_reduction(t.rollout.logprob_reduction);
    } catch (const std::invalid_argument& e) {
      throw DataError(in.name + ": /rollout: " + e.what());
    }
    prepared.push_back(std::move(p));
  }
  const auto edges = trainable_edges(inputs);
  const auto E = static_cast<std::int64_t>(edges.size());

  // The supervised term's items (best-leaf and velocity targets: fixed per update).
  std::vector<SftItem> items;
  if (layertuning && c.sft_target != "dataset") {
    for (std::size_t f = 0; f < prepared.size(); ++f) {
      const auto& t = *prepared[f].t;
      const auto d = static_cast<std::int64_t>(t.rollout.noise_levels.size());
      if (c.sft_target == "velocity" && !t.nodes.velocity)
        throw DataError(inputs[f].name + ": no /nodes/velocity: the velocity target needs `tree-rollout --velocity`");
      if (t.rewards.empty()) throw DataError(inputs[f].name + ": no /rewards: the SFT term needs the best leaf");
      const auto best = best_leaves(t, inputs[f].name);
      for (std::size_t p = 0; p < best.size(); ++p) {
        if (best[p].leaf < 0) continue;
        const double a = c.advantage_weighting ? best[p].advantage : 1.0;
        if (a == 0) continue;  // a group without a winner teaches nothing
        auto layer_weight = [&](std::int64_t k) {
          return c.layer_weights.empty() ? 1.0 : c.layer_weights.at(static_cast<std::size_t>(k));
        };
        if (!c.layer_weights.empty() && static_cast<std::int64_t>(c.layer_weights.size()) != d)
          throw UsageError("--layer-weights has " + std::to_string(c.layer_weights.size()) + " values but " +
                           inputs[f].name + " has " + std::to_string(d) + " tree layers");
        if (c.sft_target == "best-leaf") {
          for (std::int64_t k = 0; k < d; ++k)
            items.push_back({static_cast<std::int32_t>(f), static_cast<std::int64_t>(p), static_cast<std::int32_t>(k),
                             best[p].leaf, layer_weight(k) * a});
        } else {  // velocity: the window nodes on the path from the root to the best leaf
          for (auto node = t.nodes.parent[static_cast<std::size_t>(t.leaves.node[static_cast<std::size_t>(best[p].leaf)])];
               node >= 0; node = t.nodes.parent[static_cast<std::size_t>(node)]) {
            const auto k = t.nodes.step[static_cast<std::size_t>(node)] - t.rollout.window_start;
            if (k < 0 || k >= d) continue;
            items.push_back({static_cast<std::int32_t>(f), static_cast<std::int64_t>(p), static_cast<std::int32_t>(k),
                             node, layer_weight(k) * a});
          }
        }
      }
    }
  }
  if (layertuning && c.sft_target == "dataset") {
    if (!sft_data) throw UsageError("the dataset target needs a data set file");
    const auto& im = sft_data->images.shape;
    if (shape != std::vector<std::int64_t>{3, static_cast<std::int64_t>(im.at(1)), static_cast<std::int64_t>(im.at(2))})
      throw DataError("the SFT data set's images do not match the policy's latents " + shape_text(shape));
  }
  const auto I = static_cast<std::int64_t>(items.size());
  const model::Conditioning data_cond =
      layertuning && c.sft_target == "dataset"
          ? model::conditioning_for(policy, sft_data->prompts, 0, sft_data->prompts.text.size(), "SFT data set")
          : model::Conditioning{};
  const torch::Tensor data_x0 = layertuning && c.sft_target == "dataset" ? images_to_latents(sft_data->images) : torch::Tensor{};

  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& [name, p] : policy.named_parameters())
    if (p.requires_grad()) params.emplace_back(name, p);
  Optimizer opt(params, c.adamw, state);
  opt.set_lr(c.adamw.lr);
  std::int64_t step = state.step;

  const std::int64_t per_epoch = (E + c.minibatch - 1) / c.minibatch;
  RlResult result;
  result.minibatches_total = per_epoch * c.epochs;
  result.minibatches_done = start_minibatch;
  const std::int64_t stop_at = c.until < 0 ? result.minibatches_total : std::min(c.until, result.minibatches_total);
  const int rank = comm.rank(), world = comm.world();
  const auto iter = static_cast<std::uint64_t>(c.iteration);

  opt.zero_grad();
  TermGradients grads(opt.parameters(), {true, layertuning, c.kl_weight > 0});
  bool stop = false;
  for (std::int64_t epoch = 0; epoch < c.epochs && !stop; ++epoch) {
    const auto edge_order = rng::permutation(rng::derive_key(c.seed, rng::Domain::edge_order, {iter, static_cast<std::uint64_t>(epoch), 0}), E);
    const auto item_order = rng::permutation(rng::derive_key(c.seed, rng::Domain::edge_order, {iter, static_cast<std::uint64_t>(epoch), 1}), I);
    for (std::int64_t m = 0; m < per_epoch && !stop; ++m) {
      const std::int64_t global_m = epoch * per_epoch + m;
      if (global_m < start_minibatch) continue;
      const auto t0 = std::chrono::steady_clock::now();
      const std::int64_t lo = m * c.minibatch, n_edges = std::min(E, lo + c.minibatch) - lo;
      const auto [e_begin, e_end] = share(lo, n_edges, rank, world);
      const std::int64_t item_lo = m * I / per_epoch, n_items_global =
          c.sft_target == "dataset" && layertuning ? c.sft_batch : (m + 1) * I / per_epoch - item_lo;
      const auto [i_begin, i_end] = share(c.sft_target == "dataset" ? 0 : item_lo, n_items_global, rank, world);

      // --- the GRPO term on this rank's edges, one forward pass per input ---
      std::vector<torch::Tensor> lp_parts, old_parts, adv_parts, kl_parts;
      std::map<std::int32_t, std::vector<std::int64_t>> by_input;
      for (auto k = e_begin; k < e_end; ++k)
        by_input[edges[static_cast<std::size_t>(edge_order[static_cast<std::size_t>(k)])].input].push_back(
            edge_order[static_cast<std::size_t>(k)]);
      for (const auto& [f, ids] : by_input) {
        const auto& P = prepared[static_cast<std::size_t>(f)];
        const auto& t = *P.t;
        std::vector<std::int64_t> parents, children, prompts;
        std::vector<float> sig;
        for (auto id : ids) {
          const auto& e = edges[static_cast<std::size_t>(id)];
          parents.push_back(e.parent);
          children.push_back(e.child);
          prompts.push_back(e.prompt);
          sig.push_back(static_cast<float>(t.rollout.sigmas[static_cast<std::size_t>(e.step)]));
        }
        const auto x = gather_rows(t.nodes.latent, parents, P.shape).to(device);
        const auto x_next = gather_rows(t.nodes.latent, children, P.shape).to(device);
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
          const auto& e = edges[static_cast<std::size_t>(ids[j])];
          by_step[{e.step, e.level}].push_back(static_cast<std::int64_t>(j));
        }
        for (const auto& [key, rows] : by_step) {
          const auto r = torch::tensor(rows).to(device);
          const auto& sg = t.rollout.sigmas;
          const flow::StepSigmas s{sg[static_cast<std::size_t>(key.first)], sg[static_cast<std::size_t>(key.first) + 1], sg[1]};
          const auto tr = flow::transition(P.kernel, x.index_select(0, r), v.index_select(0, r), s, key.second);
          lp_parts.push_back(flow::log_prob(x_next.index_select(0, r), tr, P.reduction));
          std::vector<double> old;
          std::vector<float> adv;
          for (auto j : rows) {
            const auto& e = edges[static_cast<std::size_t>(ids[static_cast<std::size_t>(j)])];
            old.push_back(e.old_log_prob);
            adv.push_back(e.advantage);
          }
          // float64 explicitly: torch::tensor of doubles takes the default dtype, float32.
          old_parts.push_back(torch::tensor(old, torch::kDouble).to(device));
          adv_parts.push_back(torch::tensor(adv).to(device));
          if (c.kl_weight > 0) {
            const auto tr_ref = flow::transition(P.kernel, x.index_select(0, r), v_ref.index_select(0, r), s, key.second);
            kl_parts.push_back((tr.mean - tr_ref.mean).pow(2).flatten(1).mean(1) / (2.0 * tr.std * tr.std));
          }
        }
      }

      // --- the supervised term on this rank's items ---
      torch::Tensor sft_sum;
      if (layertuning && i_end > i_begin) {
        std::vector<torch::Tensor> xs, targets, sigmas_v, weights;
        std::vector<model::Conditioning> conds;
        std::vector<double> guidance;
        if (c.sft_target == "dataset") {
          const auto N = data_x0.size(0);
          std::vector<std::int64_t> idx;
          std::vector<float> sg;
          std::vector<torch::Tensor> noise;
          for (auto j = i_begin; j < i_end; ++j) {
            rng::NormalStream r(rng::derive_key(c.seed, rng::Domain::sft_dataset,
                                                {iter, static_cast<std::uint64_t>(global_m), static_cast<std::uint64_t>(j)}));
            idx.push_back(static_cast<std::int64_t>(r.next_u64() % static_cast<std::uint64_t>(N)));
            sg.push_back(static_cast<float>(static_cast<double>(r.next_u64() >> 11) * 0x1.0p-53));
            noise.push_back(rollout::keyed_normal(r.next_u64(), shape));
          }
          const auto rows = torch::tensor(idx);
          const auto loss = flow_matching_loss(policy, data_x0.index_select(0, rows), torch::stack(noise),
                                               torch::tensor(sg), data_cond.index_select(rows));
          sft_sum = loss * static_cast<double>(i_end - i_begin);
        } else {
          std::map<std::int32_t, std::vector<std::int64_t>> items_by_input;
          for (auto k = i_begin; k < i_end; ++k)
            items_by_input[items[static_cast<std::size_t>(item_order[static_cast<std::size_t>(k)])].input].push_back(
                item_order[static_cast<std::size_t>(k)]);
          for (const auto& [f, ids] : items_by_input) {
            const auto& P = prepared[static_cast<std::size_t>(f)];
            const auto& t = *P.t;
            std::vector<std::int64_t> src, prompts;
            std::vector<float> sg, w;
            std::vector<torch::Tensor> noise;
            for (auto id : ids) {
              const auto& it = items[static_cast<std::size_t>(id)];
              src.push_back(it.source);
              prompts.push_back(it.prompt);
              w.push_back(static_cast<float>(it.weight));
              if (c.sft_target == "best-leaf") {
                sg.push_back(static_cast<float>(t.rollout.sigmas[static_cast<std::size_t>(t.rollout.window_start + it.layer)]));
                noise.push_back(rollout::keyed_normal(rng::derive_key(c.seed, rng::Domain::sft_target,
                                                            {iter, static_cast<std::uint64_t>(t.prompts.id[static_cast<std::size_t>(it.prompt)]),
                                                             static_cast<std::uint64_t>(it.layer)}),
                                            shape));
              } else {
                sg.push_back(static_cast<float>(t.rollout.sigmas[static_cast<std::size_t>(t.nodes.step[static_cast<std::size_t>(it.source)])]));
              }
            }
            const auto cond = P.cond.index_select(torch::tensor(prompts));
            const auto weight = torch::tensor(w).to(device);
            if (c.sft_target == "best-leaf" && (c.sft_velocity == "conditional" || P.guidance == 1.0)) {
              const auto x0 = gather_rows(t.leaves.latent, src, shape);
              const auto n = static_cast<double>(ids.size());
              auto part = flow_matching_loss(policy, x0, torch::stack(noise), torch::tensor(sg), cond, weight) * n;
              sft_sum = sft_sum.defined() ? sft_sum + part : part;
            } else if (c.sft_target == "best-leaf") {
              // The same regression on the velocity under the rollout's guidance, the one the best
              // leaf was sampled with (--sft-velocity guided).
              const auto x0 = gather_rows(t.leaves.latent, src, shape);
              const auto e = torch::stack(noise);
              std::vector<std::int64_t> view(static_cast<std::size_t>(x0.dim()), 1);
              view[0] = -1;
              const auto s = torch::tensor(sg).view(view);
              const auto x_k = ((1 - s) * x0 + s * e).to(device);
              const auto v = training_velocity(policy, x_k, torch::tensor(sg), cond, P.guidance, c.max_rows, c.train_uncond);
              auto part = ((v - (e - x0).to(device)).pow(2).flatten(1).mean(1) * weight).sum();
              sft_sum = sft_sum.defined() ? sft_sum + part : part;
            } else {
              const auto x = gather_rows(t.nodes.latent, src, shape).to(device);
              const auto target = gather_rows(*t.nodes.velocity, src, shape).to(device);
              const auto v = training_velocity(policy, x, torch::tensor(sg), cond, P.guidance, c.max_rows, c.train_uncond);
              auto part = ((v - target).pow(2).flatten(1).mean(1) * weight).sum();
              sft_sum = sft_sum.defined() ? sft_sum + part : part;
            }
          }
        }
      }

      // --- the loss terms of this rank's share, normalised by the minibatch's global counts ---
      // Terms as weighted in the loss: L_grpo, lambda L_sft, beta_kl L_kl.
      std::array<torch::Tensor, kTerms> term;
      double sums[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};  // grpo, |rho-1|, clipped, l_old - l, kl, sft, edges, items, outside
      double max_dev = 0;
      if (!lp_parts.empty()) {
        const auto lp = torch::cat(lp_parts), old = torch::cat(old_parts), adv = torch::cat(adv_parts);
        const auto sur = clipped_surrogate(lp, old, adv, c.eta, c.clip_low, c.clip_high);
        term[kGrpo] = sur.loss.sum() / static_cast<double>(n_edges);
        sums[0] = sur.loss.sum().item<double>();
        const auto dev = (sur.ratio - 1).abs();
        sums[1] = dev.sum().item<double>();
        max_dev = dev.max().item<double>();
        sums[2] = sur.clipped.sum().item<double>();
        sums[3] = (old - lp.detach()).sum().item<double>();
        sums[6] = static_cast<double>(lp.size(0));
        sums[8] = sur.outside.sum().item<double>();
        if (c.kl_weight > 0) {
          const auto kl = torch::cat(kl_parts).sum();
          term[kKl] = c.kl_weight * kl / static_cast<double>(n_edges);
          sums[4] = kl.item<double>();
        }
      }
      if (sft_sum.defined()) {
        term[kSft] = c.lambda * sft_sum / static_cast<double>(n_items_global);
        sums[5] = sft_sum.item<double>();
        sums[7] = static_cast<double>(i_end - i_begin);
      }
      std::vector<double> totals(sums, sums + 9);
      comm.sum(totals);
      // A non-finite deviation must fail the replay check on every rank (a max may drop a NaN).
      max_dev = comm.max(std::isfinite(max_dev) ? max_dev : INFINITY);
      if (global_m == 0 && on_replay) on_replay(max_dev);
      // Each minibatch's share of its optimizer step: 1 / (minibatches in its accumulation group).
      const std::int64_t group_first = global_m / c.grad_accum * c.grad_accum;
      const std::int64_t group_size = std::min(group_first + c.grad_accum, result.minibatches_total) - group_first;
      grads.accumulate(term, 1.0 / static_cast<double>(group_size));

      MinibatchMetrics mm;
      mm.epoch = epoch;
      mm.minibatch = global_m + 1;
      mm.edges = static_cast<std::int64_t>(totals[6]);
      mm.sft_items = static_cast<std::int64_t>(totals[7]);
      const double ne = std::max(1.0, totals[6]);
      mm.loss_grpo = totals[0] / ne;
      mm.ratio_dev = totals[1] / ne;
      mm.max_ratio_dev = max_dev;
      mm.clip_fraction = totals[2] / ne;
      mm.outside_fraction = totals[8] / ne;
      mm.approx_kl = totals[3] / ne;
      mm.loss_kl = totals[4] / ne;
      mm.loss_sft = n_items_global > 0 ? totals[5] / static_cast<double>(n_items_global) : 0.0;
      mm.lambda = layertuning ? c.lambda : 0.0;
      mm.loss = mm.loss_grpo + mm.lambda * mm.loss_sft + c.kl_weight * mm.loss_kl;

      // An optimizer step every grad_accum minibatches and at the end of the update.
      const bool boundary = (global_m + 1) % c.grad_accum == 0 || global_m + 1 == result.minibatches_total;
      if (boundary) {
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
  return result;
}

}  // namespace treerpo::training
