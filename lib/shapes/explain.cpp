// explain.cpp -- the detector's view of images, summed.
#include "shapes/explain.hpp"

#include <algorithm>

namespace treerpo::shapes {

ExplainedImage explain_image(const std::string& prompt, const Image& image) {
  ExplainedImage e;
  e.prompt = prompt;
  e.found = detect(image);
  if (const auto spec = parse_prompt(prompt)) e.score = score_spec(*spec, e.found);
  e.failure = strict_failure(e.score, e.found);
  return e;
}

ExplainSummary summarise(const std::vector<ExplainedImage>& images) {
  ExplainSummary s;
  s.images = images.size();
  std::vector<double> fits;
  std::size_t parsed = 0;
  for (const auto& e : images) {
    s.strict += e.score.strict;
    s.partial += e.score.partial;
    s.geneval += e.score.geneval;
    ++s.failures[strict_failure_name(e.failure)];
    if (e.score.parsed) {
      ++parsed;
      s.named_per_image += e.score.named;
      s.components_per_image += static_cast<double>(e.found.size());
    }
    for (const auto& d : e.found) {
      ++s.components;
      if (d.in_palette) fits.push_back(d.fit);
      if (d.recognised) ++s.recognised;
      else if (!d.in_palette) ++s.off_palette;
      else if (d.fit < kMinFit) ++s.low_fit;
      else ++s.bad_size;
    }
  }
  if (s.images > 0) {
    const auto n = static_cast<double>(s.images);
    s.strict /= n, s.partial /= n, s.geneval /= n;
  }
  if (parsed > 0)
    s.named_per_image /= static_cast<double>(parsed), s.components_per_image /= static_cast<double>(parsed);
  std::sort(fits.begin(), fits.end());
  if (!fits.empty())
    for (double q : {0.1, 0.5, 0.9})
      s.fit_quantiles.push_back(fits[static_cast<std::size_t>(q * static_cast<double>(fits.size() - 1) + 0.5)]);
  return s;
}

}  // namespace treerpo::shapes
