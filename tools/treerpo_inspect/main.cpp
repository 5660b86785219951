// treerpo-inspect: see man/treerpo-inspect.1.
#include "cli/tool_main.hpp"
#include "tools/inspect.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::inspect_spec()); }
