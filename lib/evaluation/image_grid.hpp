// image_grid.hpp -- an image grid with the prompts as row labels, written as PNG (libpng):
// one row per prompt, one block of sample columns per checkpoint.
#pragma once
#include <string>
#include <vector>

#include "shapes/render.hpp"

namespace treerpo::evaluation {

/// One checkpoint's block of columns: a title and images[row][column].
struct GridBlock {
  std::string title;
  std::vector<std::vector<shapes::Image>> images;
};

/// Lays the grid out on one canvas: labels (word-wrapped) on the left, then each block's images
/// scaled by `scale` (nearest neighbour), blocks side by side under their titles.
/// \throws std::invalid_argument when blocks and labels disagree in rows
shapes::Image compose_grid(const std::vector<std::string>& row_labels, const std::vector<GridBlock>& blocks, int scale);

/// Writes an RGB image as an 8-bit PNG, atomically ("-" = stdout). \throws UsageError,
/// CreateError, IoError
void write_png(const std::string& path, const shapes::Image& image, bool force, const std::string& tool);

/// Reads an 8-bit RGB PNG (for tests and checks). \throws NoInputError, DataError
shapes::Image read_png(const std::string& path);

}  // namespace treerpo::evaluation
