// score.hpp -- `score`: adds one /rewards dataset per reward to a trajectory file, from built-in
// rewards, TorchScript reward modules or an external reward process.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/tool_main.hpp"

namespace treerpo::tools {

struct ScoreOptions {
  std::string input = "-";
  std::vector<std::string> builtin;  ///< NAME[:WEIGHT]
  std::vector<std::string> modules;  ///< FILE[:WEIGHT]
  std::string process;               ///< "PROGRAM ARG..."
  std::string process_name;
  double process_weight = 1.0;
  double process_timeout = 60.0;
  std::string decoder;
  std::int64_t batch_size = 64;
  int zstd_level = 3;
};

void add_score_options(CLI::App& app, ScoreOptions& o);
/// \throws UsageError without a reward, or for an unknown built-in one
void validate(const ScoreOptions& o, const cli::Given& given);
int run_score(const ScoreOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec score_spec();

}  // namespace treerpo::tools
