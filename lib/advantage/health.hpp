// health.hpp -- checks of a training signal that looks healthy but trains on nothing (issue 15):
// groups without reward spread, advantages that are all near zero, a reward that has collapsed
// to its minimum or saturated at its maximum. Plain numbers in, one-line findings out; the tools
// print them as warnings, record them in metrics and provenance, and with --strict-health refuse.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace treerpo::advantage {

/// One finding: a stable id (zero-reward-spread, zero-advantages, reward-collapsed,
/// reward-saturated, zero-grad-norm, nonfinite-grad-norm, ratio-past-clip) and a one-line message.
struct HealthWarning {
  std::string check;
  std::string message;
};

/// Thresholds of the data checks.
struct HealthThresholds {
  double spread_fraction = 0.5;    ///< warn when more than this fraction of groups has no spread
  double min_std = 1e-6;           ///< a group's reward std below this is no spread
  double near_zero = 1e-6;         ///< every |A| below this is "all near zero"
  double extreme_fraction = 0.9;   ///< this fraction of leaves at the min (max) is collapse (saturation)
};

/// One reward's leaf values.
struct HealthReward {
  std::string name;
  std::vector<double> values;  ///< [G]
};

/// Checks a file's rewards (leaves grouped by `leaf_prompt`, P groups) and, when not empty, its
/// edge advantages (NaN = no edge). Non-finite rewards are left out (the tools refuse them
/// elsewhere). Messages do not name the file; the caller prefixes it.
std::vector<HealthWarning> data_health(const std::vector<std::int64_t>& leaf_prompt, std::size_t prompts,
                                       const std::vector<HealthReward>& rewards, const std::vector<float>& edges,
                                       const HealthThresholds& thresholds = {});

}  // namespace treerpo::advantage
