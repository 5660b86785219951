// judge.cpp -- foreground, components and diversity, computed without the rewards' code.
#include "evaluation/judge.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>

#include "core/rng.hpp"
#include "shapes/grammar.hpp"

namespace treerpo::evaluation {
namespace {
constexpr int kForegroundDifference = 48;

std::array<int, 3> border_median(const shapes::Image& img) {
  std::array<std::vector<std::uint8_t>, 3> ch;
  const int H = img.height, W = img.width;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      if (y != 0 && y != H - 1 && x != 0 && x != W - 1) continue;
      for (std::size_t c = 0; c < 3; ++c) ch[c].push_back(img.at(y, x)[c]);
    }
  std::array<int, 3> out{};
  for (std::size_t c = 0; c < 3; ++c) {
    auto mid = ch[c].begin() + static_cast<std::ptrdiff_t>(ch[c].size() / 2);
    std::nth_element(ch[c].begin(), mid, ch[c].end());
    out[c] = *mid;
  }
  return out;
}
}  // namespace

ImageJudgement judge_image(const shapes::Image& img) {
  ImageJudgement j;
  const int H = img.height, W = img.width;
  if (H == 0 || W == 0) return j;
  const auto bg = border_median(img);
  std::vector<char> fg(static_cast<std::size_t>(H) * W, 0);
  std::size_t on = 0;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const auto* p = img.at(y, x);
      int d = 0;
      for (std::size_t c = 0; c < 3; ++c) d = std::max(d, std::abs(static_cast<int>(p[c]) - bg[c]));
      if (d > kForegroundDifference) {
        fg[static_cast<std::size_t>(y) * W + x] = 1;
        ++on;
      }
    }
  j.foreground = static_cast<double>(on) / static_cast<double>(fg.size());
  const int min_pixels = std::max(4, H * W / 256);
  std::vector<int> stack;
  for (std::size_t start = 0; start < fg.size(); ++start) {
    if (fg[start] != 1) continue;
    int size = 0;
    stack.assign(1, static_cast<int>(start));
    fg[start] = 2;
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      ++size;
      const int y = i / W, x = i % W;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          auto& f = fg[static_cast<std::size_t>(yy) * W + xx];
          if (f == 1) {
            f = 2;
            stack.push_back(yy * W + xx);
          }
        }
    }
    if (size >= min_pixels) ++j.components;
  }
  return j;
}

int named_objects(const std::string& prompt) {
  const auto spec = shapes::parse_prompt(prompt);
  if (!spec) return -1;
  return spec->kind == shapes::TaskKind::counting ? spec->count : static_cast<int>(spec->objects.size());
}

double image_distance(const shapes::Image& a, const shapes::Image& b) {
  if (a.rgb.size() != b.rgb.size() || a.rgb.empty()) return 0;
  double ss = 0;
  for (std::size_t i = 0; i < a.rgb.size(); ++i) {
    const double d = (static_cast<double>(a.rgb[i]) - b.rgb[i]) / 255.0;
    ss += d * d;
  }
  return std::sqrt(ss / static_cast<double>(a.rgb.size()));
}

Diversity diversity(const std::vector<shapes::Image>& samples, double duplicate_below) {
  Diversity d;
  std::size_t pairs = 0, duplicates = 0;
  double sum = 0;
  for (std::size_t i = 0; i < samples.size(); ++i)
    for (std::size_t k = i + 1; k < samples.size(); ++k) {
      const double dist = image_distance(samples[i], samples[k]);
      sum += dist;
      duplicates += dist < duplicate_below ? 1 : 0;
      ++pairs;
    }
  if (pairs) {
    d.mean_distance = sum / static_cast<double>(pairs);
    d.duplicate_rate = static_cast<double>(duplicates) / static_cast<double>(pairs);
  }
  return d;
}

std::vector<shapes::Image> reference_renders(const std::string& prompt, std::int64_t prompt_id, int image_size,
                                             std::uint64_t seed, int count) {
  std::vector<shapes::Image> out;
  const auto spec = shapes::parse_prompt(prompt);
  if (!spec) return out;
  constexpr std::uint64_t kRenders = 0x72656e64657273;  // "renders": apart from the samples' noise keys
  for (int k = 0; k < count; ++k) {
    const auto key = rng::derive_key(seed, rng::Domain::evaluation,
                                     {kRenders, static_cast<std::uint64_t>(prompt_id), static_cast<std::uint64_t>(k)});
    out.push_back(shapes::render(shapes::layout(*spec, image_size, key), image_size, rng::child_key(key, 1)));
  }
  return out;
}

}  // namespace treerpo::evaluation
