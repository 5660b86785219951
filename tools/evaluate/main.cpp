// evaluate: see man/evaluate.1.
#include "cli/tool_main.hpp"
#include "tools/evaluate.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::evaluate_spec()); }
