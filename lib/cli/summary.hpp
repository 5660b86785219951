// summary.hpp -- the one-line JSON summary a stage prints on stdout with --json: the same leading
// fields for every tool, then the tool's own.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "cli/context.hpp"

namespace treerpo::cli {

/// Prints {"tool": ..., "output": ..., then `fields` in their order} as one line on stdout.
/// `output` is the file written ("-" for stdout).
void print_json_summary(const Context& ctx, const std::string& output, const nlohmann::ordered_json& fields);

}  // namespace treerpo::cli
