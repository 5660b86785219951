// tree_sampler.cpp -- breadth-first tree sampling across prompts with keyed noise.
#include "rollout/tree_sampler.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "core/rng.hpp"
#include "flow/noise.hpp"

namespace treerpo::rollout {
namespace {
// Window starts l that fit: l + depth <= steps - 1, so that the last step (to sigma = 0) is
// always an ODE step (ALGORITHM.md section 3; MixGRPO never makes the last steps stochastic).
std::int64_t window_positions(std::int64_t start, std::int64_t stride, std::int64_t steps, std::int64_t depth) {
  if (start < 0 || start + depth > steps - 1)
    throw std::invalid_argument("the window [" + std::to_string(start) + ", " + std::to_string(start + depth) +
                                ") does not end before the last of " + std::to_string(steps) +
                                " steps (l + d <= T - 1: the step to sigma = 0 is never stochastic)");
  return (steps - 1 - depth - start) / stride + 1;  // starts start, start + stride, ... that fit
}

void append_rows(format::FloatArray& a, const torch::Tensor& rows) {
  const auto t = rows.to(torch::kCPU, torch::kFloat).contiguous();
  if (a.shape.empty()) {
    a.shape.push_back(0);
    for (std::int64_t d = 1; d < t.dim(); ++d) a.shape.push_back(static_cast<std::uint64_t>(t.size(d)));
  }
  a.shape[0] += static_cast<std::uint64_t>(t.size(0));
  a.data.insert(a.data.end(), t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

// One stored state of the wave being sampled, before it is placed in prompt order.
struct WaveNode {
  std::int64_t prompt;  // index in the wave
  std::int64_t parent;  // index in the wave's node list, -1 for a root
  std::int32_t depth, step;
  format::NodeKind kind;
  double log_prob;  // float64: a sum-reduced log-probability is too large for float32
  float noise_std;
  std::uint64_t key;
};

// The states of one sampled wave of prompts, in sampling order (breadth first).
struct Wave {
  std::vector<WaveNode> nodes;
  std::vector<std::int64_t> current;           // the leaves' wave nodes, one per final row
  std::vector<torch::Tensor> latents;          // the stored states, in node order
  std::vector<torch::Tensor> velocities;       // with store_velocity
  std::vector<torch::Tensor> suffix;           // with store_suffix: [G, ...] per suffix step
  torch::Tensor final_latents;                 // [G, ...] the leaves after the suffix
  std::vector<std::int64_t> nfe;               // model evaluations per wave prompt

  // Appends the rows of `state` as trunk nodes at step i (children of the previous trunk rows);
  // row j belongs to wave prompt row_prompt[j] and keeps the root key keys[j].
  void push_trunk(std::int64_t i, const torch::Tensor& state, const std::vector<std::int64_t>& row_prompt,
                  const std::vector<std::uint64_t>& keys) {
    std::vector<std::int64_t> next;
    for (std::size_t j = 0; j < keys.size(); ++j) {
      nodes.push_back({row_prompt[j], current.empty() ? -1 : current[j], 0, static_cast<std::int32_t>(i),
                       format::NodeKind::trunk, std::nan(""), 0.0f, keys[j]});
      next.push_back(static_cast<std::int64_t>(nodes.size()) - 1);
    }
    current = std::move(next);
    latents.push_back(state.to(torch::kCPU));
  }

  // Adds `b` children to each current node at window layer k (schedule step i -> i + 1), each
  // keyed by its parent's key and its index: their wave nodes go to `next` and their prompts to
  // `next_prompt`, in row order. Returns their noise draws [rows * b, ...].
  torch::Tensor add_children(std::int64_t k, std::int64_t i, std::int64_t b, bool leaves,
                             const std::vector<std::int64_t>& shape, std::vector<std::int64_t>& next,
                             std::vector<std::int64_t>& next_prompt) {
    std::vector<torch::Tensor> eps;
    for (const auto parent : current)
      for (std::int64_t ch = 0; ch < b; ++ch) {
        const auto prompt = nodes[static_cast<std::size_t>(parent)].prompt;  // copied: push_back moves nodes
        const auto key = rng::child_key(nodes[static_cast<std::size_t>(parent)].key, static_cast<std::uint64_t>(ch));
        eps.push_back(flow::keyed_normal(key, shape));
        nodes.push_back({prompt, parent, static_cast<std::int32_t>(k + 1), static_cast<std::int32_t>(i + 1),
                         leaves ? format::NodeKind::leaf : format::NodeKind::branch, 0.0, 0.0f, key});
        next.push_back(static_cast<std::int64_t>(nodes.size()) - 1);
        next_prompt.push_back(prompt);
      }
    return torch::stack(eps);
  }
};

void check_config(const SamplerConfig& c) {
  const auto T = static_cast<std::int64_t>(c.sigmas.size()) - 1, d = static_cast<std::int64_t>(c.branching.size());
  const auto l = c.window_start;
  if (T < 1 || d < 1 || c.noise_levels.size() != c.branching.size() || l < 0 || l + d > T)
    throw std::invalid_argument("sample_tree: inconsistent schedule, window or noise levels");
  if (c.roots < 1 || c.max_batch < 1) throw std::invalid_argument("sample_tree: roots and max batch must be >= 1");
  if (c.ode_stride < 1) throw std::invalid_argument("sample_tree: the ODE stride must be >= 1");
  // Stored trunk chains and suffix paths have a state per schedule step: their readers expect every one.
  if (c.ode_stride > 1 && (c.store_trunk || c.store_suffix))
    throw std::invalid_argument("sample_tree: stored trunk and suffix states need every schedule step (ODE stride 1)");
  for (auto b : c.branching)
    if (b < 1) throw std::invalid_argument("sample_tree: branching must be >= 1");
}

// Appends a sampled wave to `out` prompt by prompt: a stable sort by prompt keeps the
// breadth-first order within a prompt, so every parent precedes its children; leaves follow
// their nodes' order. Prompt indices are offset by `first_prompt`.
void store_wave(const Wave& wave, std::int64_t first_prompt, const SamplerConfig& c, format::Trajectory& out) {
  const auto& nodes = wave.nodes;
  const auto& current = wave.current;
  std::vector<std::int64_t> order(nodes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return nodes[static_cast<std::size_t>(a)].prompt < nodes[static_cast<std::size_t>(b)].prompt;
  });
  std::vector<std::int64_t> position(nodes.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    position[static_cast<std::size_t>(order[i])] = static_cast<std::int64_t>(i);
  const auto base = static_cast<std::int64_t>(out.nodes.size());
  auto& on = out.nodes;
  for (auto w : order) {
    const auto& node = nodes[static_cast<std::size_t>(w)];
    on.prompt.push_back(first_prompt + node.prompt);
    on.parent.push_back(node.parent < 0 ? -1 : base + position[static_cast<std::size_t>(node.parent)]);
    on.depth.push_back(node.depth);
    on.step.push_back(node.step);
    on.kind.push_back(node.kind);
    on.log_prob.push_back(node.log_prob);
    on.noise_std.push_back(node.noise_std);
    on.noise_key.push_back(node.key);
  }
  const auto order_t = torch::tensor(order);
  append_rows(on.latent, torch::cat(wave.latents).index_select(0, order_t));
  if (c.store_velocity) {
    if (!on.velocity) on.velocity = format::FloatArray{};
    append_rows(*on.velocity, torch::cat(wave.velocities).index_select(0, order_t));
  }

  // Leaves in the same order as their nodes.
  std::vector<std::int64_t> leaf_order(current.size());
  std::iota(leaf_order.begin(), leaf_order.end(), 0);
  std::stable_sort(leaf_order.begin(), leaf_order.end(), [&](std::int64_t a, std::int64_t b) {
    return position[static_cast<std::size_t>(current[static_cast<std::size_t>(a)])] <
           position[static_cast<std::size_t>(current[static_cast<std::size_t>(b)])];
  });
  for (auto g : leaf_order) {
    const auto w = current[static_cast<std::size_t>(g)];
    out.leaves.node.push_back(base + position[static_cast<std::size_t>(w)]);
    out.leaves.prompt.push_back(first_prompt + nodes[static_cast<std::size_t>(w)].prompt);
  }
  const auto leaves = wave.final_latents.index_select(0, torch::tensor(leaf_order));
  append_rows(out.leaves.latent, leaves);
  if (c.store_suffix && !wave.suffix.empty()) {
    if (!out.leaves.path) out.leaves.path = format::FloatArray{};
    append_rows(*out.leaves.path, torch::stack(wave.suffix, 1).index_select(0, torch::tensor(leaf_order)));
  }
  if (c.images) {
    const auto pixels = model::to_pixels(leaves);
    if (!out.leaves.image) out.leaves.image = format::ByteArray{{0, static_cast<std::uint64_t>(pixels.size(1)),
                                                                 static_cast<std::uint64_t>(pixels.size(2)), 3}, {}};
    out.leaves.image->shape[0] += static_cast<std::uint64_t>(pixels.size(0));
    out.leaves.image->data.insert(out.leaves.image->data.end(), pixels.data_ptr<std::uint8_t>(),
                                  pixels.data_ptr<std::uint8_t>() + pixels.numel());
  }
  out.statistics.nfe.insert(out.statistics.nfe.end(), wave.nfe.begin(), wave.nfe.end());
}
}  // namespace

const char* window_rule_name(WindowRule r) {
  switch (r) {
    case WindowRule::progressive: return "progressive";
    case WindowRule::fixed: return "fixed";
    case WindowRule::random: return "random";
  }
  return "?";
}

const char* window_overflow_name(WindowOverflow o) { return o == WindowOverflow::clamp ? "clamp" : "rollback"; }

std::int64_t window_start(const WindowSchedule& w, std::int64_t iteration, std::int64_t steps, std::int64_t depth,
                          std::uint64_t seed) {
  if (w.stride < 1) throw std::invalid_argument("the window stride must be >= 1");
  if (w.interval < 1) throw std::invalid_argument("the window interval must be >= 1");
  if (iteration < 0) throw std::invalid_argument("the iteration must be >= 0");
  const std::int64_t positions = window_positions(w.start, w.stride, steps, depth);
  std::int64_t m = 0;
  switch (w.rule) {
    case WindowRule::progressive:
      m = iteration / w.interval;
      m = w.overflow == WindowOverflow::rollback ? m % positions : std::min(m, positions - 1);
      break;
    case WindowRule::random: {
      rng::NormalStream s(rng::derive_key(seed, rng::Domain::window, {static_cast<std::uint64_t>(iteration)}));
      m = static_cast<std::int64_t>(s.next_u64() % static_cast<std::uint64_t>(positions));
      break;
    }
    case WindowRule::fixed: break;
  }
  return w.start + m * w.stride;
}

std::vector<double> dynamic_noise(double a0, double beta, std::int64_t depth) {
  std::vector<double> a;
  for (std::int64_t k = 0; k < depth; ++k)
    a.push_back(a0 * (1.0 + beta * static_cast<double>(k) / static_cast<double>(std::max<std::int64_t>(depth - 1, 1))));
  return a;
}

std::int64_t expected_nfe(const SamplerConfig& c) {
  const auto T = static_cast<std::int64_t>(c.sigmas.size()) - 1, d = static_cast<std::int64_t>(c.branching.size());
  std::int64_t window = 0, width = 1;
  for (auto b : c.branching) {
    window += width;
    width *= b;
  }
  return c.roots * (flow::ode_evaluations(0, c.window_start, c.ode_stride) + window +
                    width * flow::ode_evaluations(c.window_start + d, T, c.ode_stride));
}

std::int64_t stored_nodes(const SamplerConfig& c) {
  std::int64_t per_root = 1 + (c.store_trunk ? c.window_start : 0), width = 1;
  for (auto b : c.branching) per_root += (width *= b);
  return c.roots * per_root;
}

std::uint64_t root_key(std::uint64_t seed, std::int64_t iteration, std::int64_t prompt_id, std::int64_t root) {
  if (iteration < 0) throw std::invalid_argument("the iteration must be >= 0");
  return rng::derive_key(seed, rng::Domain::initial_noise,
                         {static_cast<std::uint64_t>(iteration), static_cast<std::uint64_t>(prompt_id),
                          static_cast<std::uint64_t>(root)});
}

bool sample_tree(model::Policy& policy, const model::Conditioning& cond, const std::vector<std::int64_t>& prompt_ids,
                 std::int64_t first_prompt, const SamplerConfig& c, format::Trajectory& out,
                 const std::function<bool(std::int64_t)>& on_step) {
  check_config(c);
  const auto T = static_cast<std::int64_t>(c.sigmas.size()) - 1, d = static_cast<std::int64_t>(c.branching.size());
  const auto l = c.window_start;
  auto sigmas_at = [&](std::int64_t i) {
    return flow::StepSigmas{c.sigmas[static_cast<std::size_t>(i)], c.sigmas[static_cast<std::size_t>(i) + 1],
                            c.sigmas[1]};
  };
  const auto shape = policy.latent_shape();
  const auto device = policy.placement().device;
  const auto P = static_cast<std::int64_t>(prompt_ids.size());
  torch::NoGradGuard no_grad;

  Wave wave;
  auto& nfe = wave.nfe;
  nfe.assign(static_cast<std::size_t>(P), 0);
  std::int64_t evaluations = 0;
  std::vector<std::int64_t> row_prompt;  // wave prompt of each current row
  auto velocity = [&](const torch::Tensor& x, std::int64_t i, const model::Conditioning& rows) {
    for (auto p : row_prompt) ++nfe[static_cast<std::size_t>(p)];
    evaluations += x.size(0);
    return model::guided_velocity(policy, x, c.sigmas[static_cast<std::size_t>(i)], rows, c.guidance, c.max_batch);
  };

  // One initial noise per (prompt, root), keyed by the iteration and the prompt's id. The node at the window start
  // is the tree's root; with store_trunk the trunk's earlier states precede it as a chain.
  auto& nodes = wave.nodes;
  auto& current = wave.current;  // wave node index of each row
  std::vector<torch::Tensor> x0;
  std::vector<std::int64_t> cond_row;
  std::vector<std::uint64_t> keys;
  for (std::int64_t p = 0; p < P; ++p)
    for (std::int64_t r = 0; r < c.roots; ++r) {
      keys.push_back(root_key(c.seed, c.iteration, prompt_ids[static_cast<std::size_t>(p)], r));
      x0.push_back(flow::keyed_normal(keys.back(), shape));
      row_prompt.push_back(p);
      cond_row.push_back(p);
    }
  auto x = torch::stack(x0).to(device);
  auto rows_cond = cond.index_select(torch::tensor(cond_row));
  auto& latents = wave.latents;
  auto& velocities = wave.velocities;

  auto sigma = [&](std::int64_t i) { return c.sigmas[static_cast<std::size_t>(i)]; };
  // Trunk: ODE to the window start, shared by every node of the tree.
  flow::OdeIntegrator trunk(c.ode_solver);
  for (const auto i : flow::ode_visits(0, l, c.ode_stride)) {
    // Stored as rounded; continued from unrounded, so that the tree does not depend on storing it.
    if (c.store_trunk) wave.push_trunk(i, flow::round_to_storage(x, c.storage), row_prompt, keys);
    const auto v = velocity(x, i, rows_cond);
    if (c.store_trunk && c.store_velocity) velocities.push_back(v.to(torch::kCPU));
    x = trunk.step(x, v, sigma(i), sigma(std::min(i + c.ode_stride, l)));
    if (on_step && !on_step(evaluations)) return false;
  }
  x = flow::round_to_storage(x, c.storage);  // stored as the root and continued from as stored
  wave.push_trunk(l, x, row_prompt, keys);

  // Window: one evaluation per node; each child one SDE step with its own keyed noise.
  for (std::int64_t k = 0; k < d; ++k) {
    const auto i = l + k;
    const auto v = velocity(x, i, rows_cond);
    if (c.store_velocity) velocities.push_back(v.to(torch::kCPU));
    const auto b = c.branching[static_cast<std::size_t>(k)];
    const auto n = x.size(0);
    const auto parent_row = torch::arange(n).repeat_interleave(b);
    std::vector<std::int64_t> next, next_prompt;
    const auto eps = wave.add_children(k, i, b, k + 1 == d, shape, next, next_prompt);
    const auto rows = parent_row.to(device);
    const auto step = flow::sde_step(c.kernel, x.index_select(0, rows), v.index_select(0, rows), sigmas_at(i),
                                     c.noise_levels[static_cast<std::size_t>(k)], eps.to(device), c.reduction,
                                     c.storage, c.noise_block);
    const auto lp = step.log_prob.to(torch::kCPU, torch::kDouble).contiguous();
    for (std::size_t j = 0; j < next.size(); ++j) {
      auto& node = nodes[static_cast<std::size_t>(next[j])];
      node.log_prob = lp.data_ptr<double>()[j];
      node.noise_std = static_cast<float>(step.std);
    }
    x = step.next;
    latents.push_back(x.to(torch::kCPU));
    rows_cond = rows_cond.index_select(parent_row);
    current = std::move(next);
    row_prompt = std::move(next_prompt);
    if (on_step && !on_step(evaluations)) return false;
  }

  // Suffix: every leaf continues with ODE steps to sigma_T = 0. Stored suffix states are rounded
  // copies; the leaves continue from the unrounded ones, so storing them changes nothing else.
  auto& suffix = wave.suffix;
  flow::OdeIntegrator suffix_solver(c.ode_solver);  // a new segment: the SDE steps broke the ODE path
  for (const auto i : flow::ode_visits(l + d, T, c.ode_stride)) {
    const auto v = velocity(x, i, rows_cond);
    if (c.store_velocity && i == l + d) velocities.push_back(v.to(torch::kCPU));
    x = suffix_solver.step(x, v, sigma(i), sigma(std::min(i + c.ode_stride, T)));
    if (c.store_suffix && i + 1 < T)
      suffix.push_back(flow::round_to_storage(x, c.storage).to(torch::kCPU, torch::kFloat));
    if (on_step && !on_step(evaluations)) return false;
  }
  if (c.store_velocity && l + d == T) velocities.push_back(torch::full_like(latents.back(), NAN));  // never evaluated
  wave.final_latents = flow::round_to_storage(x, c.storage).to(torch::kCPU, torch::kFloat);

  store_wave(wave, first_prompt, c, out);
  return true;
}

}  // namespace treerpo::rollout
