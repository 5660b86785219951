// common_options.cpp -- definitions of the options every tool shares.
#include "cli/common_options.hpp"

#include <CLI/CLI.hpp>

#include "cli/tool_main.hpp"

namespace treerpo::cli {

void add_common_options(CLI::App& app, const CommonSet& set, CommonValues& v, std::string& output) {
  app.set_config("--config", "", "Read options from a TOML/INI file (any long option, as key = value)");
  auto* g = app.add_option_group("Common options");
  if (set.output) {
    g->add_option("-o,--output", output, "Output file; - = stdout (refused on a terminal unless --force)")
        ->capture_default_str();
  }
  if (set.output || set.force)
    g->add_flag("-f,--force", v.force, "Overwrite an existing output; allow binary output to a terminal");
  g->add_flag("-q,--quiet", v.quiet, "Only errors on stderr");
  g->add_flag("-v,--verbose", v.verbosity, "More messages on stderr (repeatable: info, debug)");
  g->add_flag("--json", v.json, "Print a machine-readable JSON summary on stdout");
  if (set.progress) {
    g->add_flag("--progress", v.progress_on, "Show progress even when stderr is not a terminal");
    g->add_flag("--no-progress", v.progress_off, "Never show progress");
  }
  if (set.threads)
    g->add_option("-t,--threads", v.threads, "CPU threads; 0 = all CPUs allotted to this process")
        ->envname("TREERPO_THREADS")
        ->capture_default_str();
  if (set.seed)
    g->add_option("--seed", v.seed, "Master seed (uint64); drawn at random and recorded when absent")
        ->envname("TREERPO_SEED");
  if (set.device)
    g->add_option("--device", v.device, "Where libtorch runs: auto, cpu, cuda or cuda:N")->capture_default_str();
  if (set.shard)
    g->add_option("--shard", v.shard, "Take shard i of n of the work items (i/n); default from Slurm array variables");
  // Test hooks: pretend a stream is a terminal (zstd's fake-TTY flags). Hidden from --help.
  app.add_flag("--fake-stdin-tty", v.fake_stdin_tty)->group("");
  app.add_flag("--fake-stdout-tty", v.fake_stdout_tty)->group("");
  app.add_flag("--fake-stderr-tty", v.fake_stderr_tty)->group("");
}

}  // namespace treerpo::cli
