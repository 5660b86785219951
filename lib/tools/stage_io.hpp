// stage_io.hpp -- what every stage does with trajectory files: open and validate an input,
// and publish an output atomically with this stage's provenance record appended.
#pragma once
#include <string>
#include <vector>

#include "cli/context.hpp"
#include "format/trajectory_io.hpp"
#include "h5/io.hpp"

namespace treerpo::tools {

/// A validated input trajectory with the open file (for copying groups this build does not know).
struct LoadedTrajectory {
  h5::InputFile file;
  format::Trajectory trajectory;
  cli::InputRecord record() const { return {file.name, file.digest()}; }
};

/// Opens `path` ("-" = stdin) and reads it whole. \throws NoInputError, DataError
LoadedTrajectory load_trajectory(const std::string& path);
/// The same for an input already open. \throws DataError
LoadedTrajectory load_trajectory(h5::InputFile file);

/// Appends ctx's provenance record to `t` and writes it to `path` atomically.
/// `copy_from`, when given, contributes the root members this build does not know.
/// Returns the number of bytes written.
std::size_t save_trajectory(const std::string& path, format::Trajectory& t, const cli::Context& ctx,
                            const std::vector<cli::InputRecord>& inputs, const format::WriteOptions& options,
                            const std::string& timings_json = "{}", hid_t copy_from = H5I_INVALID_HID);

}  // namespace treerpo::tools
