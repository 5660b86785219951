// dataset.hpp -- samples of the shapes world: prompts of a split, balanced over task kinds,
// each with a rendered ground-truth image. A pure function of (split, count, size, seed).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "shapes/grammar.hpp"
#include "shapes/render.hpp"

namespace treerpo::shapes {

enum class Split { train, heldout };
Split parse_split(const std::string& name);  ///< \throws std::invalid_argument
const char* split_name(Split split);

/// The prompts of a split, in all_prompts() order.
std::vector<PromptSpec> split_prompts(Split split);

struct Sample {
  PromptSpec spec;
  std::string text;
  Image image;
};

/// `count` samples: sample i has task kind i mod 6 and a prompt of that kind drawn from the
/// split, rendered at `image_size`; every draw is keyed by (seed, i).
std::vector<Sample> make_samples(Split split, std::size_t count, int image_size, std::uint64_t seed);

}  // namespace treerpo::shapes
