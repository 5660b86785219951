// samples_file.hpp -- what `evaluate --samples-out` writes: the sampled images of one or two
// checkpoints with the prompt id, text and sample index of each, and the sampling settings,
// so that an external judge scores exactly what was evaluated (treerpo_format = "samples",
// version 1; layout in treerpo-samples(5)).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "h5/io.hpp"

namespace treerpo::format {

inline constexpr const char* kSamplesFormatName = "samples";

/// One checkpoint's images: [N, H, W, 3] uint8, row i is item i.
struct SampledImages {
  std::string name;    ///< "policy" or "compare": the group it is stored in
  std::string path, digest;
  std::uint64_t height = 0, width = 0;
  std::vector<std::uint8_t> rgb;  ///< N * H * W * 3
};

struct SamplesFile {
  std::vector<std::int64_t> prompt_id, sample;  ///< per item
  std::vector<std::string> text;                ///< per item
  std::vector<SampledImages> checkpoints;       ///< one or two
  std::string seed;                             ///< decimal: the evaluation seed
  std::int64_t steps = 0;
  double guidance = 1, shift = 3;
  std::vector<std::string> provenance;
};

/// Writes atomically ("-" = stdout). \throws UsageError, CreateError, IoError
void write_samples(const std::string& path, const SamplesFile& s, bool force, const std::string& tool);
/// Reads and validates. \throws DataError naming the file and dataset
SamplesFile read_samples(const h5::InputFile& in);

}  // namespace treerpo::format
