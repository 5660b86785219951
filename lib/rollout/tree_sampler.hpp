// tree_sampler.hpp -- tree-structured sampling (ALGORITHM.md section 3): an ODE trunk to the
// window start, SDE branching at every window step with one model evaluation per node shared by
// its children, and an ODE suffix for every leaf. The baselines "window" (MixGRPO) and
// "independent" (Flow-GRPO) are the same machinery with G roots per prompt and branching 1.
// Tensors and trajectory structures in and out; no files, no CLI.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flow/ode.hpp"
#include "flow/step.hpp"
#include "format/trajectory.hpp"
#include "model/policy.hpp"

namespace treerpo::rollout {

/// The sliding window's position rule across iterations (ALGORITHM.md section 3).
enum class WindowRule { progressive, fixed, random };
/// When a progressive window would pass the last step: back to l_0 cyclically, or stay at the last fit.
enum class WindowOverflow { rollback, clamp };
const char* window_rule_name(WindowRule r);
const char* window_overflow_name(WindowOverflow o);

struct WindowSchedule {
  WindowRule rule = WindowRule::progressive;
  std::int64_t start = 0;            ///< l_0
  std::int64_t stride = 1;
  std::int64_t interval = 25;        ///< tau: iterations per move
  WindowOverflow overflow = WindowOverflow::rollback;
};

/// The window start l_j for iteration j: progressive l_0 + stride floor(j / tau) (rolled back to
/// l_0 cyclically, or clamped, so that l + depth <= steps - 1: the last step, to sigma = 0, is
/// always ODE), fixed l_0, or random (a position drawn by (seed, j) among those progressive can
/// reach). \throws std::invalid_argument when no position fits (l_0 + depth > steps - 1)
std::int64_t window_start(const WindowSchedule& w, std::int64_t iteration, std::int64_t steps, std::int64_t depth,
                          std::uint64_t seed);

/// Noise level per window layer: a_k = a_0 (1 + beta k / max(d - 1, 1)).
std::vector<double> dynamic_noise(double a0, double beta, std::int64_t depth);

/// Everything the sampler needs, resolved.
struct SamplerConfig {
  flow::Kernel kernel = flow::Kernel::flowgrpo;
  flow::Reduction reduction = flow::Reduction::mean;
  std::vector<double> sigmas;               ///< [T + 1]
  std::int64_t window_start = 0;            ///< l: first SDE step
  std::vector<std::int64_t> branching;      ///< [d] children per node per layer
  std::vector<double> noise_levels;         ///< [d] a_k
  std::int64_t noise_block = 1;             ///< SDE noise on B x B pixel blocks (flow::transition)
  std::int64_t roots = 1;                   ///< independent trajectories per prompt (1 for a tree)
  double guidance = 1.0;                    ///< classifier-free guidance scale
  flow::OdeSolver ode_solver = flow::OdeSolver::euler;  ///< solver of the trunk and the suffix
  std::int64_t ode_stride = 1;              ///< schedule intervals per trunk/suffix step (the window keeps every step)
  std::int64_t max_batch = 256;             ///< model rows per forward pass
  std::optional<torch::ScalarType> storage; ///< latents stored narrower (float16): rounded first
  bool store_velocity = false;              ///< keep the (guided) velocity evaluated at each node
  bool store_trunk = false;                 ///< keep every trunk state (steps 0..l) as a chain of trunk nodes
  bool store_suffix = false;                ///< keep each leaf's ODE-suffix states (steps l+d+1..T-1): /leaves/path
  bool images = true;                       ///< decode leaves into uint8 images (pixel-space models)
  std::uint64_t seed = 0;
  std::int64_t iteration = 0;               ///< training iteration j: keys every draw with the seed
};

/// Model evaluations per prompt that sample_tree spends (ALGORITHM.md section 3): for each root,
/// trunk ceil(l / S), window sum_k prod_{m<k} b_m, suffix leaves * ceil((T - l - d) / S), S the ODE stride.
std::int64_t expected_nfe(const SamplerConfig& c);

/// Nodes per prompt that sample_tree stores: for each root, the trunk chain (with store_trunk),
/// the root and every window node.
std::int64_t stored_nodes(const SamplerConfig& c);

/// Samples prompts [0, P) of `cond` (their ids in `prompt_ids`) and appends their nodes, leaves
/// and NFE counts to `out` (prompt index = `first_prompt` + p). All states at the same schedule
/// step, across prompts and nodes, go through the model together in chunks of max_batch rows.
/// Every noise draw is keyed by (seed, iteration, prompt id, root, node path): the result does not depend
/// on P, on max_batch or on threads beyond floating-point reassociation in the model.
/// `on_step(evaluations_done)` is called after each schedule step and returns false to stop
/// (the call then returns false and `out` must be discarded). \throws std::invalid_argument
bool sample_tree(model::Policy& policy, const model::Conditioning& cond, const std::vector<std::int64_t>& prompt_ids,
                 std::int64_t first_prompt, const SamplerConfig& config, format::Trajectory& out,
                 const std::function<bool(std::int64_t)>& on_step = nullptr);

/// Root key of trajectory `root` of a prompt at training iteration `iteration` (its initial
/// noise and the start of its node path): a prompt sampled again at another iteration gets new
/// noise (ALGORITHM.md section 3).
std::uint64_t root_key(std::uint64_t seed, std::int64_t iteration, std::int64_t prompt_id, std::int64_t root);

}  // namespace treerpo::rollout
