// image_rewards.hpp -- the built-in image rewards by name, as `evaluate` (and later `score`)
// apply them: the shapes world's exact reward ("shapes" = strict, "shapes-partial") and the
// continuous family (compressibility, brightness, saturation). No torch, no files.
#pragma once
#include <string>
#include <vector>

#include "shapes/render.hpp"

namespace treerpo::scoring {

/// Names of the built-in image rewards, in a fixed order.
const std::vector<std::string>& builtin_reward_names();

/// True when `name` is a built-in reward.
bool is_builtin_reward(const std::string& name);

/// Scores `images[i]` against `prompts[i]` with every reward of `names` (each a built-in name).
/// Returns one vector per name, in the order of `names`, one value per image. The shapes world's
/// detection runs once per image however many shapes rewards are asked for; a prompt outside the
/// grammar scores 0 on them. \throws std::invalid_argument for an unknown name or a size mismatch
std::vector<std::vector<double>> score_images(const std::vector<std::string>& names,
                                              const std::vector<shapes::Image>& images,
                                              const std::vector<std::string>& prompts);

}  // namespace treerpo::scoring
