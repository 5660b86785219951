// atomic_output.cpp -- temporary outputs and their publication.
#include "core/atomic_output.hpp"

#include <fstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "core/terminal.hpp"

namespace treerpo {
namespace {
std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void write_all(int fd, const char* p, std::size_t n, const std::string& name) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw IoError(with_errno(name + ": write failed", errno));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}
}  // namespace

AtomicOutput::AtomicOutput(const std::string& path, bool force, const std::string& tool, const std::string& what)
    : path_(path) {
  static int counter = 0;
  const std::string unique = std::to_string(::getpid()) + "." + std::to_string(counter++);
  if (path == "-") {
    name_ = "<stdout>";
    if (!force && terminal::is_terminal(STDOUT_FILENO))
      throw UsageError("refusing to write " + what + " to a terminal (use -o FILE or --force)");
    const char* tmpdir = std::getenv("TMPDIR");
    temp_ = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/" + tool + "." + unique + ".tmp";
  } else {
    name_ = path;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) throw CreateError(path + ": cannot create output: is a directory");
      if (!S_ISREG(st.st_mode)) {
        // A device or FIFO (/dev/null, a named pipe): stream into it at commit, never rename over it.
        stream_to_ = path;
        const char* tmpdir = std::getenv("TMPDIR");
        temp_ = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/" + tool + "." + unique + ".tmp";
        signals::register_temp_file(temp_);
        return;
      }
      if (!force) throw UsageError(path + ": output exists (use --force to overwrite)");
    }
    const std::string dir = directory_of(path);
    if (::access(dir.c_str(), W_OK) != 0)
      throw CreateError(with_errno(path + ": cannot create output in " + dir, errno));
    temp_ = dir + "/." + base_of(path) + ".tmp." + unique;
  }
  signals::register_temp_file(temp_);
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    ::unlink(temp_.c_str());
    signals::unregister_temp_file(temp_);
  }
}

void AtomicOutput::commit() {
  signals::check();  // a stop requested while writing: publish nothing
  int fd = ::open(temp_.c_str(), O_RDONLY);
  if (fd < 0) throw IoError(with_errno(name_ + ": cannot reopen temporary output " + temp_, errno));
  struct stat st;
  if (::fstat(fd, &st) == 0) bytes_ = static_cast<std::size_t>(st.st_size);
  if (path_ == "-" || !stream_to_.empty()) {
    int out = STDOUT_FILENO;
    if (!stream_to_.empty()) {
      out = ::open(stream_to_.c_str(), O_WRONLY);
      if (out < 0) {
        int e = errno;
        ::close(fd);
        throw CreateError(with_errno(name_ + ": cannot open for writing", e));
      }
    }
    std::vector<char> buf(1 << 20);
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        throw IoError(with_errno(temp_, e));
      }
      if (n == 0) break;
      try {
        write_all(out, buf.data(), static_cast<std::size_t>(n), name_);
      } catch (...) {
        ::close(fd);
        if (out != STDOUT_FILENO) ::close(out);
        throw;
      }
    }
    ::close(fd);
    if (out != STDOUT_FILENO && ::close(out) != 0) throw IoError(with_errno(name_ + ": write failed", errno));
    ::unlink(temp_.c_str());
  } else {
    if (::fsync(fd) != 0) {
      int e = errno;
      ::close(fd);
      throw IoError(with_errno(name_ + ": fsync failed", e));
    }
    ::close(fd);
    if (::rename(temp_.c_str(), path_.c_str()) != 0)
      throw IoError(with_errno(name_ + ": cannot rename " + temp_ + " into place", errno));
  }
  signals::unregister_temp_file(temp_);
  committed_ = true;
}

void write_text(AtomicOutput& out, const std::string& text) {
  std::ofstream f(out.temp_path());
  f << text;
  if (!f.flush()) throw IoError(with_errno(out.name() + ": write failed", errno));
}

}  // namespace treerpo
