// treerpo-shapes: see man/treerpo-shapes.1.
#include "cli/tool_main.hpp"
#include "tools/shapes_tool.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::shapes_spec()); }
