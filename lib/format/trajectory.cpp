// trajectory.cpp -- format constants, the schedule and NFE formulas, and structural checks.
#include "format/trajectory.hpp"

#include <cmath>
#include <set>

#include "core/error.hpp"

namespace treerpo::format {

const std::vector<std::string>& node_kind_labels() {
  static const std::vector<std::string> labels{"trunk", "branch", "leaf"};
  return labels;
}

const char* latent_dtype_name(LatentDtype d) { return d == LatentDtype::float16 ? "float16" : "float32"; }

namespace {
template <typename A>
A rows_of(const A& a, std::size_t begin, std::size_t end) {
  A out;
  out.shape = a.shape;
  const std::size_t row = a.shape[0] ? a.data.size() / a.shape[0] : 0;
  out.shape[0] = end - begin;
  out.data.assign(a.data.begin() + static_cast<std::ptrdiff_t>(begin * row),
                  a.data.begin() + static_cast<std::ptrdiff_t>(end * row));
  return out;
}
}  // namespace

Prompts select_prompts(const Prompts& p, std::size_t begin, std::size_t end) {
  Prompts out;
  out.text.assign(p.text.begin() + static_cast<std::ptrdiff_t>(begin),
                  p.text.begin() + static_cast<std::ptrdiff_t>(end));
  out.id.assign(p.id.begin() + static_cast<std::ptrdiff_t>(begin), p.id.begin() + static_cast<std::ptrdiff_t>(end));
  if (p.conditioning) out.conditioning = rows_of(*p.conditioning, begin, end);
  if (p.pooled) out.pooled = rows_of(*p.pooled, begin, end);
  if (p.mask) out.mask = rows_of(*p.mask, begin, end);
  return out;
}

const std::vector<std::string>& known_root_members() {
  static const std::vector<std::string> names{"prompts", "rollout", "nodes",     "leaves",
                                              "rewards", "advantages", "statistics", "provenance"};
  return names;
}

std::int64_t tree_nfe(std::int64_t steps, std::int64_t window_start, const std::vector<std::int64_t>& branching) {
  const auto d = static_cast<std::int64_t>(branching.size());
  std::int64_t window = 0, width = 1;
  for (std::int64_t b : branching) { window += width; width *= b; }
  return window_start + window + width * (steps - window_start - d);
}

namespace {
[[noreturn]] void fail(const std::string& file, const std::string& what) { throw DataError(file + ": " + what); }

void expect_length(const std::string& file, const std::string& path, std::size_t got, std::size_t want,
                   const char* axis) {
  if (got != want)
    fail(file, path + ": expected " + std::to_string(want) + " items (" + axis + "), found " + std::to_string(got));
}

void expect_array(const std::string& file, const std::string& path, const FloatArray& a, std::size_t items,
                  const std::vector<std::int64_t>& item_shape) {
  std::vector<std::uint64_t> want{items};
  for (auto d : item_shape) want.push_back(static_cast<std::uint64_t>(d));
  if (a.shape != want) fail(file, path + ": shape does not match the item count and latent shape");
  std::size_t n = 1;
  for (auto d : a.shape) n *= d;
  if (a.data.size() != n) fail(file, path + ": data size does not match its shape");
}
}  // namespace

void check_invariants(const Trajectory& t, const std::string& file) {
  const std::size_t P = t.prompts.text.size(), N = t.nodes.size(), G = t.leaves.size();
  expect_length(file, "/prompts/id", t.prompts.id.size(), P, "one per prompt");
  std::set<std::int64_t> ids(t.prompts.id.begin(), t.prompts.id.end());
  if (ids.size() != P) fail(file, "/prompts/id: prompt ids must be unique");
  const auto& r = t.rollout;
  if (r.steps < 1) fail(file, "/rollout: attribute steps must be >= 1");
  expect_length(file, "/rollout/sigmas", r.sigmas.size(), static_cast<std::size_t>(r.steps + 1), "steps + 1");
  if (r.branching.size() != static_cast<std::size_t>(r.depth))
    fail(file, "/rollout: attribute branching must have depth = " + std::to_string(r.depth) + " entries");
  if (r.latent_shape.empty()) fail(file, "/rollout: attribute latent_shape is empty");
  expect_length(file, "/nodes/parent", t.nodes.parent.size(), N, "nodes");
  expect_length(file, "/nodes/depth", t.nodes.depth.size(), N, "nodes");
  expect_length(file, "/nodes/step", t.nodes.step.size(), N, "nodes");
  expect_length(file, "/nodes/kind", t.nodes.kind.size(), N, "nodes");
  expect_length(file, "/nodes/log_prob", t.nodes.log_prob.size(), N, "nodes");
  expect_length(file, "/nodes/noise_std", t.nodes.noise_std.size(), N, "nodes");
  expect_length(file, "/nodes/noise_key", t.nodes.noise_key.size(), N, "nodes");
  expect_array(file, "/nodes/latent", t.nodes.latent, N, r.latent_shape);
  if (t.nodes.velocity) expect_array(file, "/nodes/velocity", *t.nodes.velocity, N, r.latent_shape);
  std::int64_t last_prompt = -1;
  for (std::size_t i = 0; i < N; ++i) {
    const auto p = t.nodes.prompt[i];
    if (p < 0 || static_cast<std::size_t>(p) >= P)
      fail(file, "/nodes/prompt[" + std::to_string(i) + "]: index " + std::to_string(p) + " outside [0, " +
                     std::to_string(P) + ")");
    if (p < last_prompt) fail(file, "/nodes/prompt: nodes must be stored prompt by prompt in ascending order");
    last_prompt = p;
    const auto par = t.nodes.parent[i];
    if (par < -1 || par >= static_cast<std::int64_t>(i))
      fail(file, "/nodes/parent[" + std::to_string(i) + "]: " + std::to_string(par) +
                     " is not -1 or an earlier node");
    if (par >= 0 && t.nodes.prompt[static_cast<std::size_t>(par)] != p)
      fail(file, "/nodes/parent[" + std::to_string(i) + "]: parent belongs to another prompt");
    if (t.nodes.step[i] < 0 || t.nodes.step[i] > r.steps)
      fail(file, "/nodes/step[" + std::to_string(i) + "]: outside [0, steps]");
  }
  expect_length(file, "/leaves/prompt", t.leaves.prompt.size(), G, "leaves");
  expect_array(file, "/leaves/latent", t.leaves.latent, G, r.latent_shape);
  if (t.leaves.path) {
    std::vector<std::int64_t> step_shape{leaf_path_steps(r.steps, r.window_start, r.depth)};
    step_shape.insert(step_shape.end(), r.latent_shape.begin(), r.latent_shape.end());
    expect_array(file, "/leaves/path", *t.leaves.path, G, step_shape);
  }
  if (t.leaves.image) {
    const auto& s = t.leaves.image->shape;
    if (s.size() != 4 || s[0] != G || s[3] != 3) fail(file, "/leaves/image: expected shape [leaves, H, W, 3]");
  }
  for (std::size_t g = 0; g < G; ++g) {
    const auto n = t.leaves.node[g];
    if (n < 0 || static_cast<std::size_t>(n) >= N)
      fail(file, "/leaves/node[" + std::to_string(g) + "]: index outside the nodes");
    if (t.nodes.kind[static_cast<std::size_t>(n)] != NodeKind::leaf)
      fail(file, "/leaves/node[" + std::to_string(g) + "]: node " + std::to_string(n) + " is not of kind leaf");
    if (t.nodes.prompt[static_cast<std::size_t>(n)] != t.leaves.prompt[g])
      fail(file, "/leaves/prompt[" + std::to_string(g) + "]: differs from its node's prompt");
  }
  for (const auto& rw : t.rewards) expect_length(file, "/rewards/" + rw.name, rw.values.size(), G, "leaves");
  if (t.advantages) expect_length(file, "/advantages/edge", t.advantages->edge.size(), N, "nodes");
  expect_length(file, "/statistics/nfe", t.statistics.nfe.size(), P, "prompts");
}

}  // namespace treerpo::format
