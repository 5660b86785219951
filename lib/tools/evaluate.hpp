// evaluate.hpp -- `evaluate`: deterministic ODE samples of a policy on a prompt set, scored by
// the built-in rewards, overall and per task kind; a paired comparison of two checkpoints on
// the same seeds; an image grid. ALGORITHM.md section 6.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/tool_main.hpp"
#include "evaluation/ode_sampler.hpp"
#include "tools/policy_options.hpp"

namespace treerpo::tools {

struct EvaluateOptions {
  PolicyCliOptions policy;
  std::string compare;
  std::string prompts;
  std::vector<std::string> rewards{"shapes", "shapes-partial"};
  evaluation::OdeSamplerConfig sampler;  ///< its seed is the run's (0 without --seed)
  std::int64_t samples = 4;
  double confidence = 0.95;
  std::string grid;
  std::size_t grid_prompts = 12;
  std::size_t grid_samples = 4;
  int grid_scale = 2;
  std::string report;
  std::string samples_out;
};

void add_evaluate_options(CLI::App& app, EvaluateOptions& o);
void validate(const EvaluateOptions& o, const cli::Given& given);
int run_evaluate(const EvaluateOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec evaluate_spec();

}  // namespace treerpo::tools
