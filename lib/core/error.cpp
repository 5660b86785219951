// error.cpp -- helpers for building error messages.
#include "core/error.hpp"

#include <cstring>

namespace treerpo {
std::string with_errno(const std::string& what, int saved_errno) {
  return what + ": " + std::strerror(saved_errno);
}
}  // namespace treerpo
