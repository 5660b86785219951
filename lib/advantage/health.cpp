// health.cpp -- the data checks of a training signal.
#include "advantage/health.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace treerpo::advantage {
namespace {
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}
std::string percent(double f) { return num(100.0 * f) + "%"; }
}  // namespace

std::vector<HealthWarning> data_health(const std::vector<std::int64_t>& leaf_prompt, std::size_t prompts,
                                       const std::vector<HealthReward>& rewards, const std::vector<float>& edges,
                                       const HealthThresholds& th) {
  std::vector<HealthWarning> out;
  // Groups with no spread: every reward's std within the group below min_std.
  if (!rewards.empty()) {
    std::vector<std::vector<std::size_t>> members(prompts);
    for (std::size_t g = 0; g < leaf_prompt.size(); ++g)
      if (leaf_prompt[g] >= 0 && static_cast<std::size_t>(leaf_prompt[g]) < prompts)
        members[static_cast<std::size_t>(leaf_prompt[g])].push_back(g);
    std::size_t groups = 0, flat = 0;
    for (const auto& m : members) {
      if (m.size() < 2) continue;
      ++groups;
      bool spread = false;
      for (const auto& r : rewards) {
        double n = 0, mean = 0, m2 = 0;
        for (auto g : m) {
          const double x = r.values.at(g);
          if (!std::isfinite(x)) continue;
          n += 1;
          const double d = x - mean;
          mean += d / n;
          m2 += d * (x - mean);
        }
        if (n > 1 && std::sqrt(m2 / n) >= th.min_std) spread = true;
      }
      if (!spread) ++flat;
    }
    if (groups > 0 && static_cast<double>(flat) > th.spread_fraction * static_cast<double>(groups))
      out.push_back({"zero-reward-spread", "most groups have zero reward spread: " + std::to_string(flat) + " of " +
                                               std::to_string(groups) + " prompts (" +
                                               percent(static_cast<double>(flat) / static_cast<double>(groups)) +
                                               ") score all their leaves alike, so their advantages are 0"});
  }
  // Advantages all near zero.
  if (!edges.empty()) {
    double top = 0;
    std::size_t finite = 0;
    for (float a : edges)
      if (std::isfinite(a)) {
        ++finite;
        top = std::max(top, static_cast<double>(std::fabs(a)));
      }
    if (finite > 0 && top < th.near_zero)
      out.push_back({"zero-advantages", "the advantages are all near zero (max |A| = " + num(top) + " over " +
                                            std::to_string(finite) + " edges): the GRPO term has no signal"});
  }
  // A reward collapsed to its minimum or saturated at its maximum over the file's leaves.
  for (const auto& r : rewards) {
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    std::size_t n = 0;
    for (double x : r.values)
      if (std::isfinite(x)) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
        sum += x;
        ++n;
      }
    if (n < 2) continue;
    const double mean = sum / static_cast<double>(n);
    if (hi - lo <= 0) {
      out.push_back({"reward-collapsed", "reward '" + r.name + "' is " + num(lo) + " on every one of the " +
                                             std::to_string(n) + " leaves: its mean has collapsed or saturated"});
      continue;
    }
    const double tol = 1e-9 * std::max(1.0, std::max(std::fabs(lo), std::fabs(hi)));
    std::size_t at_lo = 0, at_hi = 0;
    for (double x : r.values)
      if (std::isfinite(x)) {
        at_lo += x <= lo + tol;
        at_hi += x >= hi - tol;
      }
    const double f_lo = static_cast<double>(at_lo) / static_cast<double>(n);
    const double f_hi = static_cast<double>(at_hi) / static_cast<double>(n);
    if (f_hi >= th.extreme_fraction)
      out.push_back({"reward-saturated", "reward '" + r.name + "' has saturated: " + percent(f_hi) +
                                             " of the leaves score its maximum " + num(hi) + " (mean " + num(mean) +
                                             ")"});
    else if (f_lo >= th.extreme_fraction)
      out.push_back({"reward-collapsed", "reward '" + r.name + "' has collapsed: " + percent(f_lo) +
                                             " of the leaves score its minimum " + num(lo) + " (mean " + num(mean) +
                                             ")"});
  }
  return out;
}

}  // namespace treerpo::advantage
