// update.hpp -- `update`: trains a policy. This build has the SFT objective (flow matching on
// (prompt, image) data sets); the GRPO and LayerTuning-RL objectives come with the RL stages.
#pragma once
#include "cli/tool_main.hpp"

namespace treerpo::tools {
cli::ToolSpec update_spec();
}
