// trajectory_io.hpp -- reading (with validation) and writing trajectory files.
#pragma once
#include <hdf5.h>

#include <string>

#include "format/trajectory.hpp"
#include "h5/dataset.hpp"

namespace treerpo::format {

struct WriteOptions {
  int zstd_level = 3;  ///< 0 = uncompressed (checksums stay on)
};

/// Checks the root attributes: format name and a readable version. Returns the minor version.
/// \throws DataError ("file is format 2.0; this build reads up to 1.x", "not a treerpo file")
std::int64_t check_format(hid_t file, const std::string& name, const std::string& expected = kFormatName);

/// Reads and validates the /prompts group (shared by trajectory and prompt files). \throws DataError
Prompts read_prompts(hid_t file, const std::string& name);
/// Writes the /prompts group.
void write_prompts(hid_t file, const Prompts& prompts, const WriteOptions& options);

/// Reads and validates a whole trajectory file (dtypes, shapes, invariants).
/// \throws DataError naming `name` and the dataset
Trajectory read_trajectory(hid_t file, const std::string& name);

/// Writes every known group and the root attributes into an empty, open file.
void write_trajectory(hid_t file, const Trajectory& t, const WriteOptions& options = {});

/// Copies root members that this build does not know (other stages' groups) from `src` to `dst`.
void copy_unknown_members(hid_t src, hid_t dst);
/// Names of root members this build does not know.
std::vector<std::string> unknown_members(hid_t file);

}  // namespace treerpo::format
