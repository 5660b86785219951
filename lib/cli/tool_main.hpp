// tool_main.hpp -- the one entry point of every executable: parse (CLI11), set up the process
// once (threads, HDF5, signals, locale), run, and map exceptions to exit codes.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "cli/context.hpp"

namespace CLI { class App; }

namespace treerpo::cli {

/// Which of the optional common options a tool takes (each only where it means something).
struct CommonSet {
  bool output = false;   ///< -o/--output and -f/--force (tools that write a data file)
  bool force = false;    ///< -f/--force alone (tools that write only named side files)
  bool threads = false;  ///< -t/--threads
  bool seed = false;     ///< --seed
  bool device = false;   ///< --device
  bool shard = false;    ///< --shard
  bool progress = false; ///< --progress/--no-progress
};

/// A tool: its name, help text, which common options it takes, and a setup function that
/// binds its own options to the parser and returns the function that runs it (make_tool
/// writes it from the tool's named parts).
struct ToolSpec {
  std::string name;
  std::string summary;      ///< one line for --help
  std::string footer;       ///< examples / pointers shown at the end of --help
  CommonSet common;
  std::function<std::function<int(Context&)>(CLI::App&, std::string& output)> setup;
  /// Where the seed comes from without --seed (tools with common.seed); may depend on the
  /// parsed command line (a subcommand). Unset: drawn at random.
  std::function<SeedRule(const CLI::App&)> seed_rule;
  /// Turns the resolved --device into this process's device (e.g. one GPU per local rank of a
  /// distributed launch). Unset: as resolved.
  std::function<std::string(const std::string& device)> device_rule;
};

/// A tool from its four named parts: the options struct `Options`, the function that binds
/// them to the parser, the cross-option rules (from what the user set), and the run, which a
/// test can also call in-process. The tool's options live as long as its parser.
template <class Options>
ToolSpec make_tool(ToolSpec spec, void (*add_options)(CLI::App&, Options&),
                   void (*validate)(const Options&, const Given&),
                   int (*run)(const Options&, Context&, const std::string& output)) {
  spec.setup = [add_options, validate, run](CLI::App& app, std::string& output) {
    auto options = std::make_shared<Options>();
    add_options(app, *options);
    return std::function<int(Context&)>([options, validate, run, &output](Context& ctx) {
      validate(*options, ctx.given);
      return run(*options, ctx, output);
    });
  };
  return spec;
}

/// Thrown by a tool's run when it was called bare with stdin a terminal: print usage, exit 0.
struct ShowUsage {};

/// Builds the parser of a tool (used by tool_main and by the option-collision test).
/// `output` receives -o when the tool takes it. The returned runner is valid after parsing.
std::function<int(Context&)> build_app(CLI::App& app, const ToolSpec& spec, std::string& output,
                                       struct CommonValues& values);

/// Runs a tool as a program: returns the exit code (never calls exit()).
int tool_main(int argc, char** argv, const ToolSpec& spec);

}  // namespace treerpo::cli
