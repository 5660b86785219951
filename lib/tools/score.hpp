// score.hpp -- `score`: adds one /rewards dataset per reward to a trajectory file, from built-in
// rewards, TorchScript reward modules or an external reward process.
#pragma once
#include "cli/tool_main.hpp"

namespace treerpo::tools {
cli::ToolSpec score_spec();
}
