// io.cpp -- input opening (file or file image) and atomic outputs.
#include "h5/io.hpp"

#include <fcntl.h>
#include <hdf5_hl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/digest.hpp"
#include "core/signals.hpp"
#include "core/terminal.hpp"

namespace treerpo::h5 {
namespace {
constexpr unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

std::string describe_start(const char* p, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n && i < 8; ++i) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c >= 32 && c < 127) out += static_cast<char>(c);
    else { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); out += b; }
  }
  return out;
}

void require_signature(const char* p, std::size_t n, const std::string& name) {
  if (n == 0) throw DataError(name + ": empty file, expected an HDF5 trajectory file");
  if (n < 8 || std::memcmp(p, kSignature, 8) != 0)
    throw DataError(name + ": not an HDF5 file (starts with \"" + describe_start(p, n) + "\")");
}

std::vector<char> read_fd(int fd, const std::string& name) {
  std::vector<char> out;
  std::size_t used = 0;
  out.resize(1 << 20);
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) { signals::check(); continue; }
      throw IoError(with_errno(name + ": read failed", errno));
    }
    used += static_cast<std::size_t>(n);
  }
  out.resize(used);
  return out;
}

}  // namespace

bool is_stream_path(const std::string& path) {
  if (path == "-") return true;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;  // missing: reported by open_input
  return !S_ISREG(st.st_mode);
}

InputFile open_image(std::shared_ptr<std::vector<char>> bytes, const std::string& name) {
  require_signature(bytes->data(), bytes->size(), name);
  // DONT_COPY|DONT_RELEASE: zero-copy and read-only; the caller's buffer outlives the file.
  hid_t id = H5LTopen_file_image(bytes->data(), bytes->size(),
                                 H5LT_FILE_IMAGE_DONT_COPY | H5LT_FILE_IMAGE_DONT_RELEASE);
  InputFile in;
  in.file = check(id, ExitCode::data, name + ": truncated or damaged HDF5 file");
  in.name = name;
  in.digest_ = std::async(std::launch::async, [bytes] { return sha256_of(bytes->data(), bytes->size()); }).share();
  in.bytes = bytes->size();
  in.image = std::move(bytes);
  return in;
}

InputFile open_input(const std::string& path) {
  if (is_stream_path(path)) {
    const std::string name = path == "-" ? "<stdin>" : path;
    int fd = 0;
    if (path != "-") {
      fd = ::open(path.c_str(), O_RDONLY);
      if (fd < 0) throw NoInputError(with_errno(path, errno));
    }
    auto bytes = std::make_shared<std::vector<char>>(read_fd(fd, name));
    if (fd != 0) ::close(fd);
    return open_image(std::move(bytes), name);
  }
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw NoInputError(with_errno(path, errno));
  char head[8];
  ssize_t n = ::read(fd, head, sizeof head);
  ::close(fd);
  if (n < 0) throw IoError(with_errno(path + ": read failed", errno));
  require_signature(head, static_cast<std::size_t>(n), path);
  InputFile in;
  in.digest_ = std::async(std::launch::async, [path] { return sha256_of_file(path); }).share();
  in.file = check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), ExitCode::data,
                  path + ": truncated or damaged HDF5 file");
  in.name = path;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) in.bytes = static_cast<std::size_t>(st.st_size);
  return in;
}

Handle create_file(const std::string& path, ExitCode on_error, const std::string& name) {
  Handle fcpl = check(H5Pcreate(H5P_FILE_CREATE), ExitCode::software, "H5Pcreate");
  // Object creation order is tracked so a stage's groups are listed in the order they were added.
  check_status(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
               ExitCode::software, "H5Pset_link_creation_order");
  check_status(H5Pset_obj_track_times(fcpl.get(), 0), ExitCode::software, "H5Pset_obj_track_times");
  Handle fapl = check(H5Pcreate(H5P_FILE_ACCESS), ExitCode::software, "H5Pcreate");
  // Closing the file closes every object still open in it, so commit() really flushes.
  check_status(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), ExitCode::software, "H5Pset_fclose_degree");
  return check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), on_error,
               name + ": cannot create output");
}

OutputFile::OutputFile(const std::string& path, bool force, const std::string& tool)
    : out_(path, force, tool, "HDF5") {
  file_ = create_file(out_.temp_path(), ExitCode::cant_create, out_.name());
}

OutputFile::~OutputFile() { file_.reset(); }  // closed before out_ removes an unpublished file

void OutputFile::commit() {
  // An explicit, checked close: a full disk shows up here, not as a silently short file.
  check_status(H5Fclose(file_.release()), ExitCode::io, out_.name() + ": cannot write output");
  out_.commit();
}

}  // namespace treerpo::h5
