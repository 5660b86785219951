// tree-rollout: see man/tree-rollout.1.
#include "cli/tool_main.hpp"
#include "tools/tree_rollout.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::tree_rollout_spec()); }
