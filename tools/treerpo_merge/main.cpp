// treerpo-merge: see man/treerpo-merge.1.
#include "cli/tool_main.hpp"
#include "tools/merge.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::merge_spec()); }
