// signals.hpp -- graceful SIGINT/SIGTERM handling for batch jobs (GROMACS-style graduated stop):
// first signal sets a flag that long loops poll; the second removes registered temporary files
// and exits 128+signo at once.
#pragma once
#include <string>

namespace treerpo::signals {
/// Installs the handlers (idempotent). SIGPIPE stays at its default so `tool | head` ends quietly.
void install();
/// The signal received so far (0 if none).
int pending();
/// Throws Interrupted when a stop was requested; call between units of work.
void check();

/// While alive, check() does not throw: for writing the resumable checkpoint a stop asks for.
class AllowPublish {
 public:
  AllowPublish();
  ~AllowPublish();
  AllowPublish(const AllowPublish&) = delete;
  AllowPublish& operator=(const AllowPublish&) = delete;
};
/// Temporary outputs the handler must remove if it has to exit at once (at most 16 live).
void register_temp_file(const std::string& path);
void unregister_temp_file(const std::string& path);
}  // namespace treerpo::signals
