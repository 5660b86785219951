// handle.hpp -- RAII for HDF5 identifiers and throwing wrappers that fold HDF5's error stack
// into one-line messages (HighFive's HDF5ErrMapper idea). No other module calls H5E*.
#pragma once
#include <hdf5.h>

#include <string>
#include <utility>

#include "core/error.hpp"

namespace treerpo::h5 {

/// Owns one HDF5 identifier and releases it with H5Idec_ref.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) { reset(); id_ = std::exchange(o.id_, H5I_INVALID_HID); }
    return *this;
  }
  ~Handle() { reset(); }
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset();
  /// Gives up ownership (for calls that close explicitly and must check the result).
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

/// Silences HDF5's automatic error printing once per process (errors become exceptions).
void silence_errors();

/// The innermost messages of HDF5's current error stack, e.g. "checksum mismatch ...".
std::string error_stack();

/// Throws Error(code, what + ": " + error_stack()) when id < 0; returns a Handle otherwise.
Handle check(hid_t id, ExitCode code, const std::string& what);
/// Throws when status < 0.
void check_status(herr_t status, ExitCode code, const std::string& what);

}  // namespace treerpo::h5
