// treerpo-synth: see man/treerpo-synth.1.
#include "cli/tool_main.hpp"
#include "tools/synth.hpp"

int main(int argc, char** argv) { return treerpo::cli::tool_main(argc, argv, treerpo::tools::synth_spec()); }
