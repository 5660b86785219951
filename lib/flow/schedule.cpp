// schedule.cpp -- the shifted schedule.
#include "flow/schedule.hpp"

#include <stdexcept>

namespace treerpo::flow {
std::vector<double> shifted_sigmas(std::int64_t steps, double shift) {
  if (steps < 1) throw std::invalid_argument("schedule: steps must be >= 1");
  if (!(shift > 0)) throw std::invalid_argument("schedule: shift must be > 0");
  std::vector<double> s(static_cast<std::size_t>(steps + 1));
  for (std::int64_t i = 0; i <= steps; ++i) {
    const double u = 1.0 - static_cast<double>(i) / static_cast<double>(steps);
    s[static_cast<std::size_t>(i)] = shift * u / (1.0 + (shift - 1.0) * u);
  }
  // The ends are exact whatever the shift: shift / (1 + (shift - 1)) is not 1 in floating point
  // for some shifts (below about 0.47), and the first-step rule of the kernels tests sigma == 1.
  s.front() = 1.0;
  s.back() = 0.0;
  return s;
}
}  // namespace treerpo::flow
