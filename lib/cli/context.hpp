// context.hpp -- what a tool's run() receives instead of globals: resolved common options,
// the run's identity for provenance, and progress reporting. No CLI11 or torch here.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace treerpo::cli {

/// A deterministic subset of work items: shard `index` of `count` (0-based).
struct Shard {
  std::uint32_t index = 0;
  std::uint32_t count = 1;
  /// [begin, end) of `items` taken by this shard: contiguous blocks, sizes differing by <= 1.
  std::pair<std::size_t, std::size_t> range(std::size_t items) const;
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};

/// Parses "i/n" with 0 <= i < n. \throws UsageError naming `option`
Shard parse_shard(const std::string& text, const std::string& option);
/// The shard implied by the Slurm array variables (SLURM_ARRAY_TASK_ID/_COUNT/_MIN), if any.
std::optional<Shard> shard_from_slurm();

/// One input a stage read, for the provenance record.
struct InputRecord {
  std::string path;
  std::string digest;
};

/// Which options the user set (on the command line, in a --config file or by environment
/// variable), from the parser's own counts: the input of cross-option rules.
class Given {
 public:
  Given() = default;
  explicit Given(std::set<std::string> long_options) : names_(std::move(long_options)) {}
  /// `long_option` as typed, e.g. "--seed", or a positional argument's name, e.g. "input"
  bool operator()(const std::string& long_option) const { return names_.count(long_option) > 0; }

 private:
  std::set<std::string> names_;
};

/// Where a tool's seed comes from when --seed is absent.
enum class SeedRule {
  random,  ///< drawn at random (and recorded): sampling new data
  zero,    ///< 0: results comparable across runs (evaluation, the denoising probe)
  input,   ///< from what the tool reads (a checkpoint, the rollout): the tool calls adopt_seed
};

struct Context {
  std::string tool;                     ///< program name, e.g. "treerpo-merge"
  std::vector<std::string> argv;
  std::string resolved_options;         ///< every option with its value (TOML, as --config reads)
  bool force = false;
  bool quiet = false;
  bool json = false;                    ///< print a JSON summary on stdout
  bool progress = false;                ///< resolved: show progress on stderr
  bool progress_tty = false;            ///< progress goes to a terminal (\r updates)
  unsigned threads = 1;                 ///< resolved thread budget
  std::uint64_t seed = 0;               ///< resolved master seed
  bool seed_given = false;
  SeedRule seed_rule = SeedRule::random;
  Given given;                          ///< options the user set
  std::string device = "cpu";           ///< resolved device
  Shard shard;
  /// Health warnings of this run ("check: message"), recorded in its provenance as "health".
  std::vector<std::string> health;

  /// Takes the seed of the tool's input (SeedRule::input, no --seed) and logs it, once.
  void adopt_seed(std::uint64_t from_input, const std::string& source);

  /// JSON provenance record of this stage (tool, version, git, argv, options, seed, threads,
  /// device, libraries, inputs, time, wall-clock timings in seconds). With SOURCE_DATE_EPOCH
  /// set, time comes from it and timings are left empty, so reruns are byte-identical.
  std::string provenance_record(const std::vector<InputRecord>& inputs, const std::string& timings_json = "{}") const;
};

/// A seed drawn at random (std::random_device).
std::uint64_t random_seed();

/// Refuses --json when the data itself goes to stdout: stdout carries one stream only.
/// \throws UsageError
void check_stdout_free(const Context& ctx, const std::string& output);

/// Progress on stderr: a \r-updated line on a terminal; a plain line every 10 s otherwise
/// (only when --progress forces it); nothing when disabled.
class Progress {
 public:
  Progress(const Context& ctx, std::string label, std::uint64_t total);
  ~Progress();
  void update(std::uint64_t done);
  void finish();

 private:
  bool enabled_, tty_;
  std::string label_;
  std::uint64_t total_;
  double last_ = -1e9;
  bool finished_ = false;
};

}  // namespace treerpo::cli
