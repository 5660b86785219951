// error.hpp -- the suite's exception classes and their sysexits exit codes (mapped here only).
#pragma once
#include <stdexcept>
#include <string>

namespace treerpo {

/// Exit codes of every tool (sysexits.h values; documented in treerpo(7)).
enum class ExitCode : int {
  ok = 0,
  failure = 1,        ///< a compare-style mode found differences, or nothing below fits
  usage = 64,         ///< bad or conflicting options, binary output refused on a terminal
  data = 65,          ///< bad input data: not HDF5, wrong layout, version, checksum
  no_input = 66,      ///< an input file does not exist or cannot be opened
  software = 70,      ///< internal error
  cant_create = 73,   ///< the output cannot be created
  io = 74,            ///< I/O error while reading or writing
  temp_failure = 75,  ///< retryable: out of memory on a device, a timed-out helper process
  config = 78,        ///< an invalid configuration file
};

inline int to_int(ExitCode c) { return static_cast<int>(c); }

/// Base of every error the suite throws on purpose; carries its exit code.
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode exit_code() const { return code_; }

 private:
  ExitCode code_;
};

struct UsageError : Error { explicit UsageError(const std::string& m) : Error(ExitCode::usage, m) {} };
struct DataError : Error { explicit DataError(const std::string& m) : Error(ExitCode::data, m) {} };
struct NoInputError : Error { explicit NoInputError(const std::string& m) : Error(ExitCode::no_input, m) {} };
struct CreateError : Error { explicit CreateError(const std::string& m) : Error(ExitCode::cant_create, m) {} };
struct IoError : Error { explicit IoError(const std::string& m) : Error(ExitCode::io, m) {} };
struct ResourceError : Error { explicit ResourceError(const std::string& m) : Error(ExitCode::temp_failure, m) {} };
struct ConfigError : Error { explicit ConfigError(const std::string& m) : Error(ExitCode::config, m) {} };

/// A tool stopped by a signal after cleaning up; exits 128 + signo.
class Interrupted : public Error {
 public:
  /// `outcome` says what was left behind (the default: nothing).
  explicit Interrupted(int signo, const std::string& outcome = "no output written")
      : Error(static_cast<ExitCode>(128 + signo), "interrupted by signal " + std::to_string(signo) + "; " + outcome),
        signo_(signo) {}
  int signo() const { return signo_; }

 private:
  int signo_;
};

/// "what: strerror(errno)" with errno captured by the caller before anything else ran.
std::string with_errno(const std::string& what, int saved_errno);

}  // namespace treerpo
