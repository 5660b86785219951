// advantage.hpp -- `advantage`: per-edge advantages of a scored trajectory file.
#pragma once
#include "cli/tool_main.hpp"

namespace treerpo::tools {
cli::ToolSpec advantage_spec();
}
