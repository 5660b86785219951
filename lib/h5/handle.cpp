// handle.cpp -- HDF5 identifier ownership and error-stack folding.
#include "h5/handle.hpp"

#include <vector>

namespace treerpo::h5 {

void Handle::reset() {
  if (id_ >= 0 && H5Iis_valid(id_) > 0) H5Idec_ref(id_);
  id_ = H5I_INVALID_HID;
}

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {
herr_t collect(unsigned, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (e->desc && *e->desc) out->emplace_back(e->desc);
  return 0;
}
}  // namespace

std::string error_stack() {
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect, &messages);  // innermost first
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  for (std::size_t i = 0; i < messages.size() && i < 2; ++i) {
    if (!out.empty()) out += "; ";
    out += messages[i];
  }
  return out.empty() ? "HDF5 error" : out;
}

Handle check(hid_t id, ExitCode code, const std::string& what) {
  if (id < 0) throw Error(code, what + " (" + error_stack() + ")");
  return Handle(id);
}

void check_status(herr_t status, ExitCode code, const std::string& what) {
  if (status < 0) throw Error(code, what + " (" + error_stack() + ")");
}

}  // namespace treerpo::h5
