// score: see man/score.1.
#include "cli/tool_main.hpp"
#include "tools/score.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::score_spec()); }
