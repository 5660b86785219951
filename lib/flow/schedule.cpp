// schedule.cpp -- the shifted schedule and diffusers' SD3 and FLUX schedules.
#include "flow/schedule.hpp"

#include <cmath>
#include <stdexcept>

namespace treerpo::flow {
namespace {
double shift_static(double s, double shift) { return shift * s / (1.0 + (shift - 1.0) * s); }

std::vector<double> linspace(double from, double to, std::int64_t n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    v[static_cast<std::size_t>(i)] =
        n == 1 ? from : from + (to - from) * static_cast<double>(i) / static_cast<double>(n - 1);
  return v;
}
}  // namespace

Schedule parse_schedule(const std::string& name) {
  if (name == "shifted") return Schedule::shifted;
  if (name == "sd3") return Schedule::sd3;
  if (name == "flux") return Schedule::flux;
  throw std::invalid_argument("schedule must be shifted, sd3 or flux, got '" + name + "'");
}

std::string schedule_name(Schedule s) {
  switch (s) {
    case Schedule::sd3: return "sd3";
    case Schedule::flux: return "flux";
    case Schedule::shifted: break;
  }
  return "shifted";
}

std::vector<double> shifted_sigmas(std::int64_t steps, double shift) {
  if (steps < 1) throw std::invalid_argument("schedule: steps must be >= 1");
  if (!(shift > 0)) throw std::invalid_argument("schedule: shift must be > 0");
  std::vector<double> s(static_cast<std::size_t>(steps + 1));
  for (std::int64_t i = 0; i <= steps; ++i)
    s[static_cast<std::size_t>(i)] = shift_static(1.0 - static_cast<double>(i) / static_cast<double>(steps), shift);
  // The ends are exact whatever the shift: shift / (1 + (shift - 1)) is not 1 in floating point
  // for some shifts (below about 0.47), and the first-step rule of the kernels tests sigma == 1.
  s.front() = 1.0;
  s.back() = 0.0;
  return s;
}

std::vector<double> schedule_sigmas(Schedule schedule, std::int64_t steps, double shift, std::int64_t image_tokens) {
  if (schedule == Schedule::shifted) return shifted_sigmas(steps, shift);
  if (steps < 1) throw std::invalid_argument("schedule: steps must be >= 1");
  std::vector<double> s;
  if (schedule == Schedule::sd3) {
    if (!(shift > 0)) throw std::invalid_argument("schedule: shift must be > 0");
    // The scheduler's sigma_min is its last training sigma (1/1000) already shifted; set_timesteps
    // spaces from 1 to it and shifts again.
    const double sigma_min = shift_static(1.0 / 1000.0, shift);
    s = linspace(1.0, sigma_min, steps);
    for (auto& v : s) v = shift_static(v, shift);
  } else {
    if (image_tokens < 1) throw std::invalid_argument("schedule: flux needs the image token count");
    const double m = (1.15 - 0.5) / (4096.0 - 256.0);
    const double mu = static_cast<double>(image_tokens) * m + (0.5 - m * 256.0);
    s = linspace(1.0, 1.0 / static_cast<double>(steps), steps);
    for (auto& v : s) v = std::exp(mu) / (std::exp(mu) + (1.0 / v - 1.0));
  }
  s.front() = 1.0;  // as above: the kernels' first-step rule tests sigma == 1
  s.push_back(0.0);
  return s;
}
}  // namespace treerpo::flow
