// edge_advantages.cpp -- group statistics and edge rules in double precision.
#include "advantage/edge_advantages.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace treerpo::advantage {
namespace {
struct Stats {
  double mean = 0, std = 0;
  bool degenerate = true;
};

Stats group_stats(const std::vector<double>& v, const Settings& s) {
  Stats st;
  if (v.empty()) return st;
  for (double x : v) st.mean += x;
  st.mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - st.mean) * (x - st.mean);
  const double dof = s.sample_std && v.size() > 1 ? static_cast<double>(v.size() - 1) : static_cast<double>(v.size());
  st.std = std::sqrt(ss / dof);
  st.degenerate = st.std < s.min_std;
  return st;
}

// Adds the group to the prompt's running statistics and returns them (Welford).
Stats tracked_stats(RunningStats::Entry& e, const std::vector<double>& v, const Settings& s) {
  for (double x : v) {
    e.n += 1;
    const double d = x - e.mean;
    e.mean += d / e.n;
    e.m2 += d * (x - e.mean);
  }
  Stats st;
  st.mean = e.mean;
  const double dof = s.sample_std && e.n > 1 ? e.n - 1 : e.n;
  st.std = e.n > 0 ? std::sqrt(e.m2 / dof) : 0.0;
  st.degenerate = st.std < s.min_std;
  return st;
}

double normalise(double x, const Stats& st, const Settings& s) {
  return st.degenerate ? 0.0 : (x - st.mean) / (st.std + s.eps);
}

// Sum and count of the leaf values below every node (a node's own leaf included).
void accumulate(const Forest& f, const std::vector<double>& leaf_values, std::vector<double>& sum,
                std::vector<double>& count) {
  const auto N = f.parent.size();
  sum.assign(N, 0.0);
  count.assign(N, 0.0);
  for (std::size_t g = 0; g < f.leaf_node.size(); ++g) {
    sum[static_cast<std::size_t>(f.leaf_node[g])] += leaf_values[g];
    count[static_cast<std::size_t>(f.leaf_node[g])] += 1;
  }
  for (std::size_t n = N; n-- > 0;)
    if (f.parent[n] >= 0) {
      sum[static_cast<std::size_t>(f.parent[n])] += sum[n];
      count[static_cast<std::size_t>(f.parent[n])] += count[n];
    }
}

// Edge advantages of one reward (or of the combined reward) under the rule, unclipped.
std::vector<double> rule_edges(const Forest& f, const std::vector<double>& leaf_values, const Settings& s,
                               std::map<std::string, RunningStats::Entry>* tracker,
                               const std::vector<std::string>& prompt_text, std::size_t& degenerate_groups) {
  const auto N = f.parent.size();
  std::vector<std::vector<double>> prompt_leaves(f.prompts);
  std::vector<std::vector<std::size_t>> prompt_leaf_index(f.prompts);
  for (std::size_t g = 0; g < f.leaf_node.size(); ++g) {
    const auto p = static_cast<std::size_t>(f.prompt[static_cast<std::size_t>(f.leaf_node[g])]);
    prompt_leaves[p].push_back(leaf_values[g]);
    prompt_leaf_index[p].push_back(g);
  }
  std::vector<Stats> leaf_stats(f.prompts);
  for (std::size_t p = 0; p < f.prompts; ++p) {
    leaf_stats[p] = tracker ? tracked_stats((*tracker)[prompt_text.at(p)], prompt_leaves[p], s)
                            : group_stats(prompt_leaves[p], s);
    if (!prompt_leaves[p].empty() && leaf_stats[p].degenerate) ++degenerate_groups;
  }
  std::vector<double> edge(N, std::nan(""));
  std::vector<double> sum, count;
  if (s.rule == Rule::leaf || s.rule == Rule::trajectory) {
    // Each leaf's group-normalised advantage; an edge gets the mean over the leaves below it.
    std::vector<double> a(leaf_values.size());
    for (std::size_t p = 0; p < f.prompts; ++p)
      for (auto g : prompt_leaf_index[p]) a[g] = normalise(leaf_values[g], leaf_stats[p], s);
    accumulate(f, a, sum, count);
    for (std::size_t n = 0; n < N; ++n)
      if (f.depth[n] > 0) edge[n] = sum[n] / count[n];
    return edge;
  }
  // tree / sibling: a node's value is the mean reward of the leaves below it.
  accumulate(f, leaf_values, sum, count);
  std::vector<double> value(N);
  for (std::size_t n = 0; n < N; ++n) value[n] = sum[n] / count[n];
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::size_t>> groups;  // (prompt|parent, depth)
  for (std::size_t n = 0; n < N; ++n) {
    if (f.depth[n] == 0) continue;
    const auto key = s.rule == Rule::tree ? std::make_pair(f.prompt[n], static_cast<std::int64_t>(f.depth[n]))
                                          : std::make_pair(f.parent[n], std::int64_t{0});
    groups[key].push_back(n);
  }
  for (const auto& [key, members] : groups) {
    std::vector<double> v;
    for (auto n : members) v.push_back(value[n]);
    const auto st = group_stats(v, s);
    for (auto n : members) edge[n] = normalise(value[n], st, s);
  }
  return edge;
}
}  // namespace

Rule parse_rule(const std::string& name) {
  if (name == "tree") return Rule::tree;
  if (name == "leaf") return Rule::leaf;
  if (name == "sibling") return Rule::sibling;
  if (name == "trajectory") return Rule::trajectory;
  throw std::invalid_argument("unknown advantage method '" + name + "' (tree, leaf or sibling)");
}

const char* rule_name(Rule r) {
  switch (r) {
    case Rule::tree: return "tree";
    case Rule::leaf: return "leaf";
    case Rule::sibling: return "sibling";
    case Rule::trajectory: return "trajectory";
  }
  return "?";
}

Aggregate parse_aggregate(const std::string& name) {
  if (name == "advantage") return Aggregate::advantage;
  if (name == "reward") return Aggregate::reward;
  throw std::invalid_argument("unknown aggregation '" + name + "' (advantage or reward)");
}

const char* aggregate_name(Aggregate a) { return a == Aggregate::advantage ? "advantage" : "reward"; }

Result compute(const Forest& f, const std::vector<RewardInput>& rewards, const Settings& s, RunningStats* tracker,
               const std::vector<std::string>& prompt_text) {
  const auto N = f.parent.size(), G = f.leaf_node.size();
  if (f.prompt.size() != N || f.depth.size() != N) throw std::invalid_argument("forest: inconsistent node arrays");
  if (rewards.empty()) throw std::invalid_argument("no rewards");
  if (tracker && (s.rule == Rule::tree || s.rule == Rule::sibling))
    throw std::invalid_argument("running statistics apply to the leaf and trajectory rules");
  if (tracker && prompt_text.size() != f.prompts)
    throw std::invalid_argument("running statistics need every prompt's text");
  for (const auto& r : rewards) {
    if (r.values.size() != G) throw std::invalid_argument("reward '" + r.name + "': one value per leaf expected");
    for (std::size_t g = 0; g < G; ++g)
      if (!std::isfinite(r.values[g]))
        throw std::invalid_argument("reward '" + r.name + "': leaf " + std::to_string(g) + " is not finite");
    if (!std::isfinite(r.weight)) throw std::invalid_argument("reward '" + r.name + "': weight is not finite");
  }
  Result out;
  out.edge.assign(N, 0.0);
  auto add = [&](const std::vector<double>& e, double w) {
    for (std::size_t n = 0; n < N; ++n) out.edge[n] += w * e[n];  // NaN at depth 0 stays NaN
  };
  const double prompts = std::max<double>(1.0, static_cast<double>(f.prompts));
  if (s.aggregate == Aggregate::advantage) {
    for (const auto& r : rewards) {
      std::size_t degenerate = 0;
      add(rule_edges(f, r.values, s, tracker ? &tracker->by_reward[r.name] : nullptr, prompt_text, degenerate),
          r.weight);
      out.degenerate[r.name] = static_cast<double>(degenerate) / prompts;
    }
  } else {
    std::vector<double> combined(G, 0.0);
    for (const auto& r : rewards)
      for (std::size_t g = 0; g < G; ++g) combined[g] += r.weight * r.values[g];
    std::size_t degenerate = 0;
    add(rule_edges(f, combined, s, tracker ? &tracker->by_reward["combined"] : nullptr, prompt_text, degenerate), 1.0);
    out.degenerate["combined"] = static_cast<double>(degenerate) / prompts;
  }
  std::size_t edges = 0, clipped = 0;
  std::map<std::int32_t, std::pair<double, double>> sums;  // depth -> (sum, sum of squares)
  std::map<std::int32_t, double> counts;
  for (std::size_t n = 0; n < N; ++n) {
    if (f.depth[n] == 0) continue;
    ++edges;
    if (s.clip > 0 && std::fabs(out.edge[n]) > s.clip) {
      ++clipped;
      out.edge[n] = std::clamp(out.edge[n], -s.clip, s.clip);
    }
    sums[f.depth[n]].first += out.edge[n];
    sums[f.depth[n]].second += out.edge[n] * out.edge[n];
    counts[f.depth[n]] += 1;
  }
  out.clipped_fraction = edges ? static_cast<double>(clipped) / static_cast<double>(edges) : 0.0;
  for (const auto& [depth, s2] : sums) {
    const double n = counts[depth], mean = s2.first / n;
    out.per_depth[depth] = {mean, std::sqrt(std::max(0.0, s2.second / n - mean * mean))};
  }
  return out;
}

}  // namespace treerpo::advantage
