// bitmap_font.hpp -- text on RGB canvases without a font library (labels of image grids).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "shapes/render.hpp"

namespace treerpo::evaluation {

inline constexpr int kGlyphWidth = 5, kGlyphHeight = 7, kGlyphAdvance = 6;

/// Width in pixels of `text` drawn by draw_text.
int text_width(const std::string& text);

/// Draws `text` with its top-left corner at (x, y), clipped to the canvas. Upper case is drawn
/// as lower case; characters without a glyph as '?'.
void draw_text(shapes::Image& canvas, int x, int y, const std::string& text, const std::array<std::uint8_t, 3>& color);

}  // namespace treerpo::evaluation
