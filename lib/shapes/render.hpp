// render.hpp -- the renderer of the shapes world: anti-aliased shapes on a varied background,
// laid out to satisfy a prompt, deterministic given a key.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "shapes/grammar.hpp"

namespace treerpo::shapes {

/// An RGB image, uint8, height x width x 3 (HWC).
struct Image {
  int height = 0, width = 0;
  std::vector<std::uint8_t> rgb;
  std::uint8_t* at(int y, int x) { return rgb.data() + (static_cast<std::size_t>(y) * width + x) * 3; }
  const std::uint8_t* at(int y, int x) const { return rgb.data() + (static_cast<std::size_t>(y) * width + x) * 3; }
};

/// The reference RGB of a colour (what the reward's segmentation compares against).
std::array<double, 3> palette(Color c);

/// One drawn object: centre and size in pixels.
struct PlacedObject {
  Shape shape = Shape::circle;
  Color color = Color::red;
  double cx = 0, cy = 0, size = 0;
};

/// True when the point (x, y), in pixels, lies inside the object.
bool covers(const PlacedObject& o, double x, double y);

/// A scene: objects and background parameters.
struct Scene {
  std::vector<PlacedObject> objects;
  double background[3] = {220, 220, 220};
  double gradient[2] = {0, 0};  ///< luminance change across the image, x and y
};

/// Lays out the objects a prompt asks for (random sizes, colours where unspecified, positions;
/// the relation of a position prompt holds clearly). Pure function of (spec, size, key).
Scene layout(const PromptSpec& spec, int image_size, std::uint64_t key);

/// Renders a scene with 4x4 supersampling and mild pixel noise. Pure function of its inputs.
Image render(const Scene& scene, int image_size, std::uint64_t key);

}  // namespace treerpo::shapes
