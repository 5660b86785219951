// update.hpp -- `update`: trains a policy: GRPO / LayerTuning-RL on advantage-bearing trajectory
// files, or SFT (flow matching) on (prompt, image) data set files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/tool_main.hpp"
#include "tools/policy_options.hpp"
#include "training/grpo.hpp"
#include "training/sft.hpp"

namespace treerpo::tools {

/// --objective: from the inputs' kind (the default), or the one named.
enum class Objective { by_input, sft, grpo, layertuning, nft };
/// --on-mismatch: what a model digest or replay check that disagrees with the policy does.
enum class OnMismatch { error, warn };

struct UpdateOptions {
  std::vector<std::string> inputs;
  PolicyCliOptions policy;
  Objective objective = Objective::by_input;
  std::string trainable = ".*";
  std::string metrics;
  std::string export_path;
  bool weights_only = false;
  training::SftConfig sft;  ///< also the optimizer settings of RL (--lr, --grad-accum, ...)
  training::RlConfig rl;
  training::LambdaSchedule lambda_schedule = training::LambdaSchedule::linear;
  std::int64_t lambda_iterations = 100;
  std::int64_t iteration = -1;  ///< -1: the inputs' /rollout iteration
  std::string sft_data;
  std::string reference;
  double replay_tolerance = 1e-4;
  OnMismatch on_mismatch = OnMismatch::error;
  bool strict_health = false;
  int dist_timeout = 300;
};

void add_update_options(CLI::App& app, UpdateOptions& o);
void validate(const UpdateOptions& o, const cli::Given& given);
int run_update(const UpdateOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec update_spec();

}  // namespace treerpo::tools
