// stage_io.cpp -- input loading and atomic output for trajectory stages.
#include "tools/stage_io.hpp"

#include "core/log.hpp"

namespace treerpo::tools {

LoadedTrajectory load_trajectory(const std::string& path) { return load_trajectory(h5::open_input(path)); }

LoadedTrajectory load_trajectory(h5::InputFile file) {
  LoadedTrajectory in;
  in.file = std::move(file);
  log::debug(in.file.name + ": " + std::to_string(in.file.bytes) + " bytes" +
             (in.file.image ? " (buffered from a stream)" : ""));
  in.trajectory = format::read_trajectory(in.file.file.get(), in.file.name);
  return in;
}

std::size_t save_trajectory(const std::string& path, format::Trajectory& t, const cli::Context& ctx,
                            const std::vector<cli::InputRecord>& inputs, const format::WriteOptions& options,
                            const std::string& timings_json, hid_t copy_from) {
  t.provenance.push_back(ctx.provenance_record(inputs, timings_json));
  h5::OutputFile out(path, ctx.force, ctx.tool);
  format::write_trajectory(out.id(), t, options);
  if (copy_from >= 0) format::copy_unknown_members(copy_from, out.id());
  out.commit();
  return out.bytes();
}

}  // namespace treerpo::tools
