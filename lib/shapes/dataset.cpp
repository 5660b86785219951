// dataset.cpp -- balanced, keyed samples of the shapes world.
#include "shapes/dataset.hpp"

#include <map>
#include <stdexcept>

#include "core/rng.hpp"

namespace treerpo::shapes {

Split parse_split(const std::string& name) {
  if (name == "train") return Split::train;
  if (name == "heldout") return Split::heldout;
  throw std::invalid_argument("unknown split '" + name + "' (expected train or heldout)");
}

const char* split_name(Split split) { return split == Split::train ? "train" : "heldout"; }

std::vector<PromptSpec> split_prompts(Split split) {
  std::vector<PromptSpec> out;
  for (const auto& p : all_prompts())
    if (is_held_out(p) == (split == Split::heldout)) out.push_back(p);
  return out;
}

std::vector<Sample> make_samples(Split split, std::size_t count, int image_size, std::uint64_t seed) {
  std::map<TaskKind, std::vector<PromptSpec>> by_kind;
  for (const auto& p : split_prompts(split)) by_kind[p.kind].push_back(p);
  std::vector<Sample> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto& pool = by_kind.at(static_cast<TaskKind>(i % kTaskKinds));
    const std::uint64_t key = rng::derive_key(seed, rng::Domain::synthetic, {0x73686170, i});  // "shap"
    const auto& spec = pool[static_cast<std::size_t>(rng::NormalStream(key).next_u64() % pool.size())];
    Sample s;
    s.spec = spec;
    s.text = prompt_text(spec);
    s.image = render(layout(spec, image_size, rng::child_key(key, 1)), image_size, rng::child_key(key, 2));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace treerpo::shapes
