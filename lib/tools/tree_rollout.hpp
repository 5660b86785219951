// tree_rollout.hpp -- `tree-rollout`: samples a policy on prompts as trees (Dynamic-TreeRPO), or
// as the window (MixGRPO) and independent (Flow-GRPO) baselines, and writes a trajectory file.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/tool_main.hpp"
#include "flow/ode.hpp"
#include "flow/schedule.hpp"
#include "flow/step.hpp"
#include "rollout/tree_sampler.hpp"
#include "tools/policy_options.hpp"

namespace treerpo::tools {

enum class RolloutMode { tree, window, independent };

struct RolloutOptions {
  PolicyCliOptions policy;
  std::string prompts;
  std::int64_t iteration = 0;
  RolloutMode mode = RolloutMode::tree;
  std::int64_t steps = 10;
  double shift = 3.0;
  flow::Schedule schedule = flow::Schedule::shifted;
  std::int64_t depth = 4;
  std::vector<std::int64_t> branching{2};
  std::int64_t leaves = 0;             ///< 0: 16 for window/independent, prod(branching) for a tree
  double noise = 0.7;
  std::optional<double> noise_growth;  ///< default 0.5 for a tree, 0 for the baselines
  std::vector<double> noise_levels;
  std::int64_t noise_block = 1;
  flow::Kernel kernel = flow::Kernel::flowgrpo;
  flow::Reduction reduction = flow::Reduction::mean;
  rollout::WindowSchedule window;
  double guidance = 1.0;
  flow::OdeSolver ode_solver = flow::OdeSolver::euler;
  std::int64_t ode_stride = 1;
  std::int64_t max_batch = 256;
  std::int64_t wave_prompts = 64;
  std::string latent_dtype = "float32";
  bool velocity = false;
  bool trunk = false;
  bool suffix = false;
  bool images = true;
  int zstd_level = 3;
};

void add_tree_rollout_options(CLI::App& app, RolloutOptions& o);
/// \throws UsageError for an option that shapes only another mode
void validate(const RolloutOptions& o, const cli::Given& given);
int run_tree_rollout(const RolloutOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec tree_rollout_spec();

}  // namespace treerpo::tools
