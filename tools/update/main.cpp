// update: see man/update.1.
#include "cli/tool_main.hpp"
#include "tools/update.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::update_spec()); }
