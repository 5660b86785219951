// image_grid.cpp -- grid layout and PNG I/O.
#include "evaluation/image_grid.hpp"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "core/atomic_output.hpp"
#include "core/error.hpp"
#include "evaluation/bitmap_font.hpp"

namespace treerpo::evaluation {
namespace {
constexpr int kMargin = 6, kCellGap = 2, kBlockGap = 12, kLabelChars = 30, kLineHeight = kGlyphHeight + 3;
constexpr std::array<std::uint8_t, 3> kInk{20, 20, 20};

std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string line;
  for (std::string w; words >> w;) {
    if (!line.empty() && line.size() + 1 + w.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + w.substr(0, width);
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

void blit_scaled(shapes::Image& canvas, const shapes::Image& img, int x0, int y0, int scale) {
  for (int y = 0; y < img.height * scale; ++y)
    for (int x = 0; x < img.width * scale; ++x) {
      const auto* s = img.at(y / scale, x / scale);
      auto* d = canvas.at(y0 + y, x0 + x);
      d[0] = s[0], d[1] = s[1], d[2] = s[2];
    }
}

struct FileCloser {
  void operator()(std::FILE* f) const { if (f) std::fclose(f); }
};
}  // namespace

shapes::Image compose_grid(const std::vector<std::string>& row_labels, const std::vector<GridBlock>& blocks,
                           int scale) {
  if (scale < 1) throw std::invalid_argument("grid scale must be >= 1");
  int cell = 0, columns_total = 0;
  std::vector<int> columns;
  for (const auto& b : blocks) {
    if (b.images.size() != row_labels.size()) throw std::invalid_argument("grid block rows differ from labels");
    int cols = 0;
    for (const auto& row : b.images) {
      cols = std::max(cols, static_cast<int>(row.size()));
      for (const auto& img : row) cell = std::max({cell, img.height * scale, img.width * scale});
    }
    columns.push_back(cols);
    columns_total += cols;
  }
  const int label_w = kLabelChars * kGlyphAdvance;
  std::vector<int> row_h;
  for (const auto& label : row_labels)
    row_h.push_back(std::max(cell, static_cast<int>(wrap(label, kLabelChars).size()) * kLineHeight));
  const int header_h = kLineHeight + 2;
  int width = kMargin + label_w + kMargin;
  for (std::size_t b = 0; b < blocks.size(); ++b)
    width += columns[b] * (cell + kCellGap) + (b + 1 < blocks.size() ? kBlockGap : 0);
  width += kMargin;
  int height = kMargin + header_h;
  for (int h : row_h) height += h + kCellGap;
  height += kMargin;

  shapes::Image canvas;
  canvas.width = width;
  canvas.height = height;
  canvas.rgb.assign(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3, 255);
  int x = kMargin + label_w + kMargin;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const int block_w = columns[b] * (cell + kCellGap);
    std::string title = blocks[b].title;
    const auto max_chars = static_cast<std::size_t>(std::max(1, block_w / kGlyphAdvance));
    if (title.size() > max_chars) title = title.substr(title.size() - max_chars);  // keep the file name's end
    draw_text(canvas, x, kMargin, title, kInk);
    int y = kMargin + header_h;
    for (std::size_t r = 0; r < row_labels.size(); ++r) {
      int cx = x;
      for (const auto& img : blocks[b].images[r]) {
        blit_scaled(canvas, img, cx, y, scale);
        cx += cell + kCellGap;
      }
      y += row_h[r] + kCellGap;
    }
    x += block_w + kBlockGap;
  }
  int y = kMargin + header_h;
  for (std::size_t r = 0; r < row_labels.size(); ++r) {
    const auto lines = wrap(row_labels[r], kLabelChars);
    int ly = y + std::max(0, (row_h[r] - static_cast<int>(lines.size()) * kLineHeight) / 2);
    for (const auto& line : lines) {
      draw_text(canvas, kMargin, ly, line, kInk);
      ly += kLineHeight;
    }
    y += row_h[r] + kCellGap;
  }
  return canvas;
}

void write_png(const std::string& path, const shapes::Image& image, bool force, const std::string& tool) {
  AtomicOutput out(path, force, tool, "PNG");
  {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(out.temp_path().c_str(), "wb"));
    if (!f) throw CreateError(with_errno(out.name() + ": cannot create", errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!png || !info) {
      png_destroy_write_struct(&png, &info);
      throw IoError(out.name() + ": libpng could not start");
    }
    if (setjmp(png_jmpbuf(png))) {
      png_destroy_write_struct(&png, &info);
      throw IoError(out.name() + ": PNG write failed");
    }
    png_init_io(png, f.get());
    png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < image.height; ++y) png_write_row(png, image.at(y, 0));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    if (std::fflush(f.get()) != 0 || std::ferror(f.get()))
      throw IoError(with_errno(out.name() + ": write failed", errno));
  }
  out.commit();
}

shapes::Image read_png(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw NoInputError(with_errno(path, errno));
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw DataError(path + ": libpng could not start");
  }
  shapes::Image img;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw DataError(path + ": not a readable PNG file");
  }
  png_init_io(png, f.get());
  png_read_info(png, info);
  if (png_get_color_type(png, info) != PNG_COLOR_TYPE_RGB || png_get_bit_depth(png, info) != 8) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw DataError(path + ": expected an 8-bit RGB PNG");
  }
  img.width = static_cast<int>(png_get_image_width(png, info));
  img.height = static_cast<int>(png_get_image_height(png, info));
  img.rgb.resize(static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height) * 3);
  for (int y = 0; y < img.height; ++y) png_read_row(png, img.at(y, 0), nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return img;
}

}  // namespace treerpo::evaluation
