// io.hpp -- opening HDF5 inputs (files or streams) and writing outputs atomically (files or
// stdout). The suite's "-" convention and its "whole output or none" rule live here.
#pragma once
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/atomic_output.hpp"
#include "h5/handle.hpp"

namespace treerpo::h5 {

/// True for "-" and for anything that is not a regular file (pipes, FIFOs, <(...)).
bool is_stream_path(const std::string& path);

/// An opened input: a read-only file id, the name used in messages, and its digest.
struct InputFile {
  Handle file;
  std::string name;    ///< the path, or "<stdin>"
  /// "sha256:..." of the bytes read. Computed on another thread while HDF5 reads the file
  /// (hashing costs about as much as reading); waits for it on first use.
  const std::string& digest() const { return digest_.get(); }
  std::shared_future<std::string> digest_;
  std::size_t bytes = 0;
  std::shared_ptr<std::vector<char>> image;  ///< stream contents; must outlive `file`
};

/// Opens an HDF5 input read-only. Streams are read whole and opened as a file image.
/// \throws NoInputError (missing/unreadable), DataError (empty, not HDF5, damaged)
InputFile open_input(const std::string& path);

/// The file-image route on its own (bytes already in memory). \throws DataError
InputFile open_image(std::shared_ptr<std::vector<char>> bytes, const std::string& name);

/// An output written under a temporary name and published by commit(): renamed into place for
/// a named path, streamed to stdout for "-". Destroyed without commit(), it leaves nothing.
class OutputFile {
 public:
  /// \param path   output path or "-"
  /// \param force  overwrite an existing file; allow binary output to a terminal
  /// \param tool   program name, used in temporary file names
  /// \throws UsageError (exists, terminal), CreateError (cannot create)
  OutputFile(const std::string& path, bool force, const std::string& tool);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  hid_t id() const { return file_.get(); }
  const std::string& name() const { return out_.name(); }
  /// Closes, syncs and publishes the file. \throws IoError
  void commit();
  /// Size in bytes of the published output (valid after commit()).
  std::size_t bytes() const { return out_.bytes(); }

 private:
  AtomicOutput out_;  // declared first: destroyed last, after the file is closed
  Handle file_;
};

/// File creation and access lists every writer uses (object times off, earliest format for
/// h5py/h5dump and file-image compatibility).
Handle create_file(const std::string& path, ExitCode on_error, const std::string& name);

}  // namespace treerpo::h5
