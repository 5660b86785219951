// atomic_output.hpp -- "whole output or none": a temporary name that commit() publishes, by
// rename() for a named path or by streaming to stdout for "-". Used by every file writer.
#pragma once
#include <cstddef>
#include <string>

namespace treerpo {

class AtomicOutput {
 public:
  /// \param path   output path, or "-" for stdout (the temporary then lives in $TMPDIR)
  /// \param force  overwrite an existing file; allow binary output to a terminal
  /// \param tool   program name, used in temporary file names
  /// \param what   what is written, for the terminal refusal ("HDF5", "safetensors")
  /// \throws UsageError (exists, terminal), CreateError (directory missing or not writable)
  AtomicOutput(const std::string& path, bool force, const std::string& tool, const std::string& what);
  ~AtomicOutput();  ///< without commit(): removes the temporary file
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& name() const { return name_; }  ///< the path, or "<stdout>"
  /// Syncs and publishes the (closed) temporary file. \throws IoError, Interrupted
  void commit();
  std::size_t bytes() const { return bytes_; }

 private:
  std::string path_, name_, temp_;
  std::string stream_to_;  ///< an existing device or FIFO the output is streamed into
  bool committed_ = false;
  std::size_t bytes_ = 0;
};

/// Writes `text` into the (unpublished) temporary file of `out`; commit() publishes it.
/// \throws IoError
void write_text(AtomicOutput& out, const std::string& text);

}  // namespace treerpo
