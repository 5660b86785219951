// evaluate.hpp -- `evaluate`: deterministic ODE samples of a policy on a prompt set, scored by
// the built-in rewards, overall and per task kind; a paired comparison of two checkpoints on
// the same seeds; an image grid. ALGORITHM.md section 6.
#pragma once
#include "cli/tool_main.hpp"

namespace treerpo::tools {
cli::ToolSpec evaluate_spec();
}
