// advantage: see man/advantage.1.
#include "cli/tool_main.hpp"
#include "tools/advantage.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::advantage_spec()); }
