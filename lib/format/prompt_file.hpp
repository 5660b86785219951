// prompt_file.hpp -- where prompts come from: a text file (one prompt per line, ids = line
// order) or an HDF5 prompt file with precomputed text embeddings, written by users from
// Python with their own text encoders (man treerpo-prompts(5)); a trajectory file's /prompts
// group is accepted too.
#pragma once
#include <string>

#include "format/trajectory.hpp"
#include "format/trajectory_io.hpp"

namespace treerpo::format {

inline constexpr const char* kPromptFormatName = "prompts";

/// Reads prompts from a text or HDF5 file ("-" = stdin), told apart by the HDF5 signature.
/// \throws NoInputError, DataError naming the file and object
Prompts read_prompt_file(const std::string& path);

/// Writes an HDF5 prompt file atomically (root attributes, /prompts, /provenance).
void write_prompt_file(const std::string& path, const Prompts& prompts, const std::vector<std::string>& provenance,
                       bool force, const std::string& tool);

}  // namespace treerpo::format
