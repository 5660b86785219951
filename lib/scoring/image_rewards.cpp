// image_rewards.cpp -- built-in image rewards by name.
#include "scoring/image_rewards.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "shapes/reward.hpp"

namespace treerpo::scoring {

const std::vector<std::string>& builtin_reward_names() {
  static const std::vector<std::string> names{
      "shapes",          "shapes-partial", "shapes-geneval", "shapes-geneval-partial",
      "compressibility", "brightness",     "saturation"};
  return names;
}

bool is_builtin_reward(const std::string& name) {
  const auto& n = builtin_reward_names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

std::vector<std::vector<double>> score_images(const std::vector<std::string>& names,
                                              const std::vector<shapes::Image>& images,
                                              const std::vector<std::string>& prompts) {
  if (images.size() != prompts.size()) throw std::invalid_argument("score_images: one prompt per image expected");
  for (const auto& n : names)
    if (!is_builtin_reward(n)) throw std::invalid_argument("unknown reward '" + n + "'");
  const bool needs_shapes = std::any_of(names.begin(), names.end(), [](const std::string& n) {
    return n.rfind("shapes", 0) == 0;
  });
  std::vector<std::vector<double>> out(names.size(), std::vector<double>(images.size()));
  for (std::size_t i = 0; i < images.size(); ++i) {
    std::optional<shapes::ShapesScore> s;
    if (needs_shapes) {
      if (const auto spec = shapes::parse_prompt(prompts[i])) s = shapes::score_spec(*spec, shapes::detect(images[i]));
      else s = shapes::ShapesScore{};  // outside the grammar: 0
    }
    for (std::size_t r = 0; r < names.size(); ++r) {
      const auto& n = names[r];
      out[r][i] = n == "shapes"                   ? s->strict
                  : n == "shapes-partial"         ? s->partial
                  : n == "shapes-geneval"         ? s->geneval
                  : n == "shapes-geneval-partial" ? s->geneval_partial
                  : n == "compressibility" ? shapes::compressibility(images[i])
                  : n == "brightness"      ? shapes::brightness(images[i])
                                           : shapes::saturation(images[i]);
    }
  }
  return out;
}

}  // namespace treerpo::scoring
