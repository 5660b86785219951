// common_options.hpp -- the shared option set, defined once (treerpo(7) documents it).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace CLI { class App; }

namespace treerpo::cli {

struct CommonSet;

/// Raw values of the common options as parsed.
struct CommonValues {
  int verbosity = 0;
  bool quiet = false;
  bool json = false;
  bool force = false;
  bool progress_on = false, progress_off = false;
  unsigned threads = 0;
  std::optional<std::uint64_t> seed;
  std::string device = "auto";
  std::string shard;
  bool fake_stdin_tty = false, fake_stdout_tty = false, fake_stderr_tty = false;
};

/// Adds the common options (one "Common options" group) that `set` selects, plus --config and
/// --version. `output` is bound to -o/--output when the tool writes a data file.
void add_common_options(CLI::App& app, const CommonSet& set, CommonValues& values, std::string& output);

}  // namespace treerpo::cli
