// inspect.hpp -- treerpo-inspect: summary of a trajectory file (prompts, tree shapes, groups,
// reward and advantage statistics, provenance); --json gives the form schemas/ describes.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "cli/tool_main.hpp"
#include "tools/stage_io.hpp"

namespace treerpo::tools {

struct InspectOptions {
  std::string input = "-";
  std::size_t prompt_rows = 10;  ///< prompts listed in the text form; 0 = all
  bool datasets = false;         ///< list every dataset in the text form
};

/// The JSON description of a loaded file (schemas/trajectory-inspect-1.json).
nlohmann::ordered_json describe_file(const LoadedTrajectory& in);
/// The text form of the same description.
std::string describe_text(const nlohmann::ordered_json& j, const InspectOptions& o);

/// The JSON description of a prompt file (schemas/prompts-inspect-1.json); validates it.
/// \throws DataError naming the file and dataset
nlohmann::ordered_json describe_prompt_file(const h5::InputFile& file);
std::string describe_prompt_text(const nlohmann::ordered_json& j, const InspectOptions& o);

void add_inspect_options(CLI::App& app, InspectOptions& o);
/// \throws cli::ShowUsage when called bare with stdin a terminal
void validate(const InspectOptions& o, const cli::Given& given);
int run_inspect(const InspectOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec inspect_spec();

}  // namespace treerpo::tools
