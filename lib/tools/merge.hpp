// merge.hpp -- treerpo-merge: combines shard files of one run (disjoint prompts) into one file
// equal to what a single unsharded run writes.
#pragma once
#include <string>
#include <vector>

#include "cli/tool_main.hpp"
#include "format/trajectory.hpp"

namespace treerpo::tools {

struct MergeOptions {
  std::vector<std::string> inputs;
  int zstd_level = 3;
};

/// Merges shards: prompts sorted by id, nodes and leaves re-indexed. `names` are used in errors.
/// \throws DataError when configurations, rewards or advantages differ, or prompt ids repeat
format::Trajectory merge_trajectories(const std::vector<format::Trajectory>& shards,
                                      const std::vector<std::string>& names);

void add_merge_options(CLI::App& app, MergeOptions& o);
void validate(const MergeOptions& o, const cli::Given& given);
int run_merge(const MergeOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec merge_spec();

}  // namespace treerpo::tools
