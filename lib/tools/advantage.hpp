// advantage.hpp -- `advantage`: per-edge advantages of a scored trajectory file.
#pragma once
#include <string>
#include <vector>

#include "advantage/edge_advantages.hpp"
#include "cli/tool_main.hpp"

namespace treerpo::tools {

struct AdvantageOptions {
  std::string input = "-";
  advantage::Rule method = advantage::Rule::tree;
  advantage::Aggregate aggregate = advantage::Aggregate::advantage;
  bool sample_std = false;  ///< ddof 1 instead of 0
  double eps = 1e-8;
  double min_std = 1e-6;
  double clip = 5.0;
  std::vector<std::string> rewards;  ///< subset to use (default: all)
  std::vector<std::string> weights;  ///< NAME=W overrides
  std::string stat_tracking;
  bool strict_health = false;
  int zstd_level = 3;
};

void add_advantage_options(CLI::App& app, AdvantageOptions& o);
void validate(const AdvantageOptions& o, const cli::Given& given);
int run_advantage(const AdvantageOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec advantage_spec();

}  // namespace treerpo::tools
