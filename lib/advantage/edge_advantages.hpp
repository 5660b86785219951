// edge_advantages.hpp -- credit assignment on rollout trees (ALGORITHM.md section 4): group
// statistics per prompt, the edge rules "tree" (BranchGRPO), "leaf" and "sibling", the
// trajectory rule of window/independent rollouts, both multi-reward aggregations, clipping and
// per-prompt running statistics. Plain numbers in and out (double precision); no files, no CLI.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace treerpo::advantage {

enum class Rule { tree, leaf, sibling, trajectory };
enum class Aggregate { advantage, reward };  ///< normalise each reward then sum; or sum then normalise

Rule parse_rule(const std::string& name);            ///< \throws std::invalid_argument
const char* rule_name(Rule r);
Aggregate parse_aggregate(const std::string& name);  ///< \throws std::invalid_argument
const char* aggregate_name(Aggregate a);

/// The tree structure of one file: nodes with parents (roots -1), prompt and depth per node;
/// leaves as node indices. Parents precede children. Trainable edges lead into nodes of depth
/// >= 1; stored trunk states (depth 0, with a parent) are not trained.
struct Forest {
  std::vector<std::int64_t> parent, prompt;
  std::vector<std::int32_t> depth;
  std::vector<std::int64_t> leaf_node;  ///< [G] node of each leaf
  std::size_t prompts = 0;
};

/// Running per-prompt statistics of rewards across iterations (Flow-GRPO's stat tracking):
/// Welford counts by (reward name, prompt text).
struct RunningStats {
  struct Entry { double n = 0, mean = 0, m2 = 0; };
  std::map<std::string, std::map<std::string, Entry>> by_reward;
};

struct Settings {
  Rule rule = Rule::tree;
  Aggregate aggregate = Aggregate::advantage;
  bool sample_std = false;   ///< ddof 1 instead of the population std
  double eps = 1e-8;         ///< added to the std
  double min_std = 1e-6;     ///< a group whose std is below gives advantage 0
  double clip = 5.0;         ///< |A| <= clip; 0 = no clipping
};

/// One reward's leaf values and its weight.
struct RewardInput {
  std::string name;
  double weight = 1.0;
  std::vector<double> values;  ///< [G]
};

struct Result {
  std::vector<double> edge;                        ///< [N]; NaN at depth 0 (no trainable edge)
  std::map<std::string, double> degenerate;        ///< per reward (or "combined"): fraction of groups
  double clipped_fraction = 0;                     ///< of edges, before clipping
  std::map<std::int32_t, std::pair<double, double>> per_depth;  ///< depth -> (mean, std) of edges
};

/// Edge advantages of every node (the edge parent -> node). With `tracker`, the leaf-level
/// normalisation of the leaf and trajectory rules uses each prompt's running mean and std (the
/// group's rewards added first) instead of the group's; `prompt_text` names the prompts.
/// \throws std::invalid_argument on inconsistent sizes, a non-finite reward (naming it), or a
/// tracker with the tree or sibling rule
Result compute(const Forest& forest, const std::vector<RewardInput>& rewards, const Settings& settings,
               RunningStats* tracker = nullptr, const std::vector<std::string>& prompt_text = {});

}  // namespace treerpo::advantage
