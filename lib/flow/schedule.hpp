// schedule.hpp -- the sigma schedules of rectified-flow sampling (ALGORITHM.md section 1): the
// suite's shifted schedule, and diffusers' SD3 and FLUX schedules so that a rollout of an
// exported model samples what the user's diffusers pipeline samples.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace treerpo::flow {

/// shifted: sigma_i = shift u / (1 + (shift - 1) u), u = 1 - i / T (ends 1 ... 0).
/// sd3: diffusers' FlowMatchEulerDiscreteScheduler (1000 training steps, static shift), as
///   StableDiffusion3Pipeline sets it: linspace(1, s_min, T) shifted, s_min = the shifted 1/1000,
///   then 0 (T = 10, shift 3: last nonzero 0.0089).
/// flux: FluxPipeline's linspace(1, 1/T, T) through the dynamic shift exp(mu) / (exp(mu) + 1/t - 1),
///   mu linear in the image's token count from 0.5 at 256 tokens to 1.15 at 4096, then 0.
enum class Schedule { shifted, sd3, flux };

/// \throws std::invalid_argument for other names than shifted, sd3 and flux
Schedule parse_schedule(const std::string& name);
std::string schedule_name(Schedule s);

/// sigma_i = shift u / (1 + (shift - 1) u), u = 1 - i / T, i = 0..T: sigma_0 = 1 and sigma_T = 0
/// exactly (set, not computed).
/// \throws std::invalid_argument when steps < 1 or shift <= 0
std::vector<double> shifted_sigmas(std::int64_t steps, double shift = 3.0);

/// The T + 1 sigmas of `schedule`: `shift` applies to shifted and sd3, `image_tokens` (the
/// transformer's image sequence length, (H/2)(W/2) for FLUX's packed latents) to flux.
/// \throws std::invalid_argument when steps < 1, shift <= 0 or image_tokens < 1 for flux
std::vector<double> schedule_sigmas(Schedule schedule, std::int64_t steps, double shift, std::int64_t image_tokens);

}  // namespace treerpo::flow
