// judge.hpp -- figures that judge sampled images without any of the rewards' decisions: a
// foreground mask against the border's colour, its connected components counted against the
// number of objects the prompt names, and the diversity among one prompt's samples. A
// reward-hacked or collapsed checkpoint looks bad here even when its reward is high.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "shapes/render.hpp"

namespace treerpo::evaluation {

/// One image's judge figures.
struct ImageJudgement {
  double foreground = 0;  ///< fraction of pixels that differ clearly from the border's colour
  int components = 0;     ///< 8-connected foreground components of at least a few pixels
};

/// Foreground: a pixel whose largest channel difference from the median colour of the image's
/// one-pixel border exceeds 48 (of 255). Components smaller than max(4, H W / 256) pixels are
/// specks and not counted.
ImageJudgement judge_image(const shapes::Image& image);

/// Objects a prompt of the shapes grammar names (a count prompt names `count`); -1 when the
/// prompt is not of the grammar.
int named_objects(const std::string& prompt);

/// Root-mean-square pixel distance of two images of the same size, in [0, 1] (255 = 1).
double image_distance(const shapes::Image& a, const shapes::Image& b);

/// Diversity of one prompt's samples: the mean pairwise image distance, and the share of pairs
/// closer than `duplicate_below` (near-duplicates). Fewer than two images give (0, 0).
struct Diversity {
  double mean_distance = 0;
  double duplicate_rate = 0;
};
Diversity diversity(const std::vector<shapes::Image>& samples, double duplicate_below = 0.02);

/// Reference renders of a prompt for the judge's "renders" column: `count` ground-truth images
/// of the shapes world at `image_size`, keyed by (seed, prompt id, k). Empty when the prompt is
/// not of the grammar.
std::vector<shapes::Image> reference_renders(const std::string& prompt, std::int64_t prompt_id, int image_size,
                                             std::uint64_t seed, int count);

}  // namespace treerpo::evaluation
