// schedule.hpp -- the shifted sigma schedule of rectified-flow sampling (ALGORITHM.md section 1).
#pragma once
#include <cstdint>
#include <vector>

namespace treerpo::flow {

/// sigma_i = shift u / (1 + (shift - 1) u), u = 1 - i / T, i = 0..T: sigma_0 = 1 and sigma_T = 0
/// exactly (set, not computed).
/// \throws std::invalid_argument when steps < 1 or shift <= 0
std::vector<double> shifted_sigmas(std::int64_t steps, double shift = 3.0);

}  // namespace treerpo::flow
