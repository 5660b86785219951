// tree_rollout.hpp -- `tree-rollout`: samples a policy on prompts as trees (Dynamic-TreeRPO), or
// as the window (MixGRPO) and independent (Flow-GRPO) baselines, and writes a trajectory file.
#pragma once
#include "cli/tool_main.hpp"

namespace treerpo::tools {
cli::ToolSpec tree_rollout_spec();
}
