// reward.hpp -- exact rewards of the shapes world, computed from the pixels: the "shapes"
// reward (colour segmentation, connected components, shape class, count, relative position)
// and continuous image rewards (compressibility, brightness, saturation).
#pragma once
#include <string>
#include <vector>

#include "shapes/grammar.hpp"
#include "shapes/render.hpp"

namespace treerpo::shapes {

/// One object found in an image.
struct Detection {
  Shape shape = Shape::circle;
  Color color = Color::red;
  double cx = 0, cy = 0;
  int area = 0;
};

/// Finds the objects: each pixel is assigned to the palette colour it lies towards from the
/// background (estimated as the image's median colour), 4-connected components of one colour
/// above a minimum area are objects, and each is classed by template matching (the soft IoU
/// of its alpha map with supersampled templates of the four shapes at its size and centroid).
std::vector<Detection> detect(const Image& image);

struct ClauseResult {
  std::string clause;  ///< e.g. "a red circle", "three triangles", "circle left of square"
  bool ok = false;
};

struct ShapesScore {
  bool parsed = false;                ///< false: the prompt is not of the grammar (scores 0)
  std::vector<ClauseResult> clauses;
  double strict = 0;                  ///< 1 when every clause holds
  double partial = 0;                 ///< fraction of clauses that hold
};

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
