// model_tool.hpp -- treerpo-model: create a built-in model checkpoint (init), describe any
// policy (info: kind, parameters, FLOPs, digest), export parameters as safetensors (export).
#pragma once
#include "cli/tool_main.hpp"

namespace treerpo::tools {
cli::ToolSpec model_spec();
}
