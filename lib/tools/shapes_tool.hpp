// shapes_tool.hpp -- treerpo-shapes: prompt files and supervised data sets of the built-in
// shapes world (train and held-out splits share no prompt).
#pragma once
#include "cli/tool_main.hpp"

namespace treerpo::tools {
cli::ToolSpec shapes_spec();
}
