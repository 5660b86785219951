// treerpo-model: see man/treerpo-model.1.
#include "cli/tool_main.hpp"
#include "tools/model_tool.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::model_spec()); }
