// synth.hpp -- treerpo-synth: writes a synthetic trajectory file of a given tree shape, with
// keyed random latents and no model. It exercises every later stage, the file format, pipes
// and sharding before (and besides) a real rollout.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cli/tool_main.hpp"
#include "format/trajectory.hpp"

namespace treerpo::tools {

struct SynthOptions {
  std::string prompts;                  ///< text file, one prompt per line ("" = --count generated)
  std::int64_t count = 4;               ///< prompts "synthetic prompt k" when no file is given
  std::int64_t steps = 10;
  double shift = 3.0;
  std::int64_t depth = 4;
  std::vector<std::int64_t> branching{2};  ///< one value for every layer, or one per layer
  std::int64_t window_start = 0;
  double noise = 0.7;                   ///< a_0
  double noise_growth = 0.5;            ///< beta
  std::int64_t iteration = 0;
  std::vector<std::int64_t> latent_shape{3, 32, 32};
  std::string latent_dtype = "float32";
  bool images = true;
  bool velocity = false;
  std::vector<std::int64_t> conditioning;  ///< {tokens, dim}: also write /prompts/conditioning
  int zstd_level = 3;
};

/// Builds the synthetic trajectory of prompts [range) of `source`. A pure function of
/// (options, seed, prompt id): independent of sharding. `on_prompt`, when given, is called with
/// the number of prompts done (progress reporting).
format::Trajectory synthesize(const SynthOptions& o, const format::Prompts& source,
                              std::pair<std::size_t, std::size_t> range, std::uint64_t seed,
                              const std::function<void(std::size_t)>& on_prompt = {});
/// The same with prompts given as texts (ids = positions in `texts`).
format::Trajectory synthesize(const SynthOptions& o, const std::vector<std::string>& texts,
                              std::pair<std::size_t, std::size_t> range, std::uint64_t seed,
                              const std::function<void(std::size_t)>& on_prompt = {});

void add_synth_options(CLI::App& app, SynthOptions& o);
/// \throws UsageError for an inconsistent tree shape, window or latent shape
void validate(const SynthOptions& o, const cli::Given& given);
int run_synth(const SynthOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec synth_spec();

}  // namespace treerpo::tools
