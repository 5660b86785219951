// reward.hpp -- exact rewards of the shapes world, computed from the pixels: the "shapes"
// reward (colour segmentation, connected components, shape class, count, relative position)
// and continuous image rewards (compressibility, brightness, saturation).
#pragma once
#include <string>
#include <vector>

#include "shapes/grammar.hpp"
#include "shapes/render.hpp"

namespace treerpo::shapes {

/// One foreground component found in an image, recognised as an object or not.
struct Detection {
  Shape shape = Shape::circle;  ///< the best-fitting template (meaningful only when recognised)
  Color color = Color::red;     ///< meaningful only when in_palette
  double cx = 0, cy = 0;
  int area = 0;
  bool in_palette = true;  ///< false: pixels far from the background that no palette colour explains
  double fit = 0;          ///< best soft IoU of the component with a shape template
  double size = 0;         ///< side / diameter of the best template, in pixels
  bool recognised = false; ///< fit >= kMinFit and size within the renderer's range (with a margin)
};

/// Recognition thresholds. kMinFit is calibrated so that >= 99 % of rendered objects at 32, 48
/// and 64 px pass (tests/unit/test_shapes.cpp, ShapesReward.CalibratedFitThreshold). Sizes are
/// fractions of the image side: the renderer draws 0.18-0.34, accepted 0.13-0.45.
inline constexpr double kMinFit = 0.70;
inline constexpr double kMinSize = 0.13, kMaxSize = 0.45;

/// Finds the components: each pixel is assigned to the palette colour it lies towards from the
/// background (estimated as the image's median colour), or marked "other" when it is far from
/// the background and no palette colour explains it. 4-connected components of one label above
/// a minimum area (max(6, H W / 160) pixels; smaller ones are specks) are reported. A palette
/// component is classed by template matching (the soft IoU of its alpha map with supersampled
/// templates of the four shapes at its size and centroid) and recognised when the best fit and
/// its size pass the thresholds above.
std::vector<Detection> detect(const Image& image);

struct ClauseResult {
  std::string clause;  ///< e.g. "a red circle", "three triangles", "circle left of square"
  bool ok = false;
};

/// The scores of one image against one prompt.
///
/// strict ("shapes"): 1 only when the image holds exactly the prompt's objects: every component
/// is recognised, their number equals the objects the prompt names (a count prompt names
/// `count`), a one-to-one matching pairs each named object with a component of its shape (and
/// colour, where named), and for a position prompt the relation holds between the matched pair.
///
/// partial ("shapes-partial"): the F1 of the matching, 2 M / (named objects + components), with
/// M the size of a maximum matching and every component counted, recognised or not (junk
/// lowers precision, missing objects recall). A position prompt averages it with the relation:
/// (2 F1 + relation) / 3.
///
/// geneval / geneval_partial ("shapes-geneval", "shapes-geneval-partial"): GenEval's lenient
/// semantics over the recognised objects: each named object needs at least one matching
/// detection (a count prompt exactly `count` of its shape), extra objects are allowed; the
/// clauses below are these.
struct ShapesScore {
  bool parsed = false;                ///< false: the prompt is not of the grammar (scores 0)
  std::vector<ClauseResult> clauses;  ///< GenEval-style clauses
  double strict = 0;
  double partial = 0;
  double geneval = 0;                 ///< 1 when every GenEval clause holds
  double geneval_partial = 0;         ///< fraction of GenEval clauses that hold
  int named = 0;                      ///< objects the prompt names
  int matched = 0;                    ///< M: the maximum matching of named objects to components
};

/// Why an image is not strictly correct: the first of these that applies, in this order.
enum class StrictFailure {
  none,          ///< it is (strict = 1)
  unparsed,      ///< the prompt is not of the grammar
  unrecognised,  ///< some component is not a recognised object (fit, size or colour)
  count,         ///< all recognised, but not as many components as named objects
  match,         ///< as many, but shapes or colours do not pair up with the named objects
  relation,      ///< the objects are right, their position relation is not
};
const char* strict_failure_name(StrictFailure f);
StrictFailure strict_failure(const ShapesScore& score, const std::vector<Detection>& found);

/// Scores an image against a prompt of the grammar.
ShapesScore score_shapes(const std::string& prompt, const Image& image);
/// The same with the detections already made (for reuse across rewards).
ShapesScore score_spec(const PromptSpec& spec, const std::vector<Detection>& found);

/// zstd-compressed bytes per pixel of the raw RGB image, negated: higher = more compressible
/// (DDPO's JPEG-compressibility analogue).
double compressibility(const Image& image);
/// Mean luma (Rec. 601) in [0, 1].
double brightness(const Image& image);
/// Mean HSV saturation in [0, 1].
double saturation(const Image& image);

}  // namespace treerpo::shapes
