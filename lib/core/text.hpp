// text.hpp -- small text forms shared by messages across modules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace treerpo {

/// A shape as messages write it: "[3, 32, 32]".
template <class Int>
std::string shape_text(const std::vector<Int>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace treerpo
