// explain.hpp -- why images do or do not satisfy the shapes reward: the detector's components
// of each image (recognised or not, and why not) and the first reason strict fails, summed over
// a set of images. For reading a checkpoint's failures, not for scoring.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "shapes/reward.hpp"

namespace treerpo::shapes {

struct ExplainedImage {
  std::string prompt;
  ShapesScore score;
  std::vector<Detection> found;
  StrictFailure failure = StrictFailure::none;
};

struct ExplainSummary {
  std::size_t images = 0;
  double strict = 0, partial = 0, geneval = 0;          ///< means over the images
  double named_per_image = 0, components_per_image = 0;  ///< means over the parsed images
  std::map<std::string, std::size_t> failures;           ///< strict_failure_name -> images
  std::size_t components = 0, recognised = 0;
  std::size_t off_palette = 0;   ///< unrecognised: pixels no palette colour explains
  std::size_t low_fit = 0;       ///< unrecognised: in the palette, best template fit < kMinFit
  std::size_t bad_size = 0;      ///< unrecognised: the fit passes, the size is out of range
  std::vector<double> fit_quantiles;  ///< 10th, 50th, 90th percentile of the palette components' fit
};

ExplainedImage explain_image(const std::string& prompt, const Image& image);
ExplainSummary summarise(const std::vector<ExplainedImage>& images);

}  // namespace treerpo::shapes
