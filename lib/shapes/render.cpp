// render.cpp -- scene layout and anti-aliased rendering.
#include "shapes/render.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include "core/rng.hpp"

namespace treerpo::shapes {
namespace {
// Uniform [0, 1) from a keyed stream.
struct Uniform {
  rng::NormalStream s;
  explicit Uniform(std::uint64_t key) : s(key) {}
  double next() { return s.next_uniform(); }
  double in(double lo, double hi) { return lo + (hi - lo) * next(); }
  int pick(int n) { return std::min(n - 1, static_cast<int>(next() * n)); }
};

}  // namespace

bool covers(const PlacedObject& o, double x, double y) {
  const double dx = x - o.cx, dy = y - o.cy, h = o.size / 2;
  switch (o.shape) {
    case Shape::circle: return dx * dx + dy * dy <= h * h;
    case Shape::square: return std::fabs(dx) <= h && std::fabs(dy) <= h;
    case Shape::triangle: {  // apex up, base at the bottom
      if (dy < -h || dy > h) return false;
      return std::fabs(dx) <= (dy + h) / 2;
    }
    case Shape::cross: {
      const double arm = o.size / 6;
      return (std::fabs(dx) <= arm && std::fabs(dy) <= h) || (std::fabs(dy) <= arm && std::fabs(dx) <= h);
    }
  }
  return false;
}

namespace {
bool relation_holds(Relation r, const PlacedObject& a, const PlacedObject& b) {
  const double dx = b.cx - a.cx, dy = b.cy - a.cy;
  switch (r) {
    case Relation::left_of: return dx > 0 && std::fabs(dx) >= 1.5 * std::fabs(dy);
    case Relation::right_of: return dx < 0 && std::fabs(dx) >= 1.5 * std::fabs(dy);
    case Relation::above: return dy > 0 && std::fabs(dy) >= 1.5 * std::fabs(dx);
    case Relation::below: return dy < 0 && std::fabs(dy) >= 1.5 * std::fabs(dx);
  }
  return false;
}
}  // namespace

std::array<double, 3> palette(Color c) {
  switch (c) {
    case Color::red: return {215, 45, 45};
    case Color::green: return {40, 165, 65};
    case Color::blue: return {45, 85, 215};
    case Color::yellow: return {225, 200, 35};
    case Color::purple: return {145, 60, 185};
  }
  return {0, 0, 0};
}

Scene layout(const PromptSpec& spec, int image_size, std::uint64_t key) {
  Uniform u(key);
  Scene scene;
  const double base = u.in(195, 240);
  for (double& c : scene.background) c = base + u.in(-8, 8);
  scene.gradient[0] = u.in(-10, 10);
  scene.gradient[1] = u.in(-10, 10);

  std::vector<PlacedObject> wanted;
  const int copies = spec.kind == TaskKind::counting ? spec.count : 1;
  for (const auto& o : spec.objects)
    for (int k = 0; k < copies; ++k) {
      PlacedObject p;
      p.shape = o.shape;
      p.color = o.color ? *o.color : static_cast<Color>(u.pick(kColors));
      const double scale = copies >= 4 ? 0.75 : copies >= 3 ? 0.85 : 1.0;
      p.size = u.in(0.24, 0.34) * image_size * scale;
      wanted.push_back(p);
    }
  const double gap = std::max(2.0, image_size / 16.0);
  for (int attempt = 0; attempt < 20000; ++attempt) {
    bool ok = true;
    for (auto& p : wanted) {
      const double m = p.size / 2 + 1;
      p.cx = u.in(m, image_size - m);
      p.cy = u.in(m, image_size - m);
    }
    for (std::size_t i = 0; ok && i < wanted.size(); ++i)
      for (std::size_t j = i + 1; ok && j < wanted.size(); ++j) {
        const double need = (wanted[i].size + wanted[j].size) / 2 * 1.2 + gap;  // corners may not touch
        ok = std::hypot(wanted[i].cx - wanted[j].cx, wanted[i].cy - wanted[j].cy) >= need;
      }
    if (ok && spec.relation) ok = relation_holds(*spec.relation, wanted[0], wanted[1]);
    if (ok) {
      scene.objects = wanted;
      return scene;
    }
  }
  throw std::runtime_error("shapes: no layout found for '" + prompt_text(spec) + "'");
}

Image render(const Scene& scene, int image_size, std::uint64_t key) {
  rng::NormalStream noise(rng::child_key(key, 0x6e6f697365));  // "noise"
  Image img;
  img.height = img.width = image_size;
  img.rgb.resize(static_cast<std::size_t>(image_size) * image_size * 3);
  std::vector<std::array<double, 3>> colors;
  Uniform jitter(rng::child_key(key, 0x6a6974746572));  // "jitter"
  for (const auto& o : scene.objects) {
    auto c = palette(o.color);
    for (double& v : c) v = std::clamp(v + jitter.in(-12, 12), 0.0, 255.0);
    colors.push_back(c);
  }
  constexpr int kSuper = 4;
  for (int y = 0; y < image_size; ++y)
    for (int x = 0; x < image_size; ++x) {
      const double shade =
          scene.gradient[0] * (x / double(image_size) - 0.5) + scene.gradient[1] * (y / double(image_size) - 0.5);
      std::array<double, 3> px{scene.background[0] + shade, scene.background[1] + shade, scene.background[2] + shade};
      for (std::size_t k = 0; k < scene.objects.size(); ++k) {
        int hits = 0;
        for (int sy = 0; sy < kSuper; ++sy)
          for (int sx = 0; sx < kSuper; ++sx)
            hits += covers(scene.objects[k], x + (sx + 0.5) / kSuper, y + (sy + 0.5) / kSuper) ? 1 : 0;
        const double a = hits / double(kSuper * kSuper);
        for (int ch = 0; ch < 3; ++ch)
          px[static_cast<std::size_t>(ch)] =
              (1 - a) * px[static_cast<std::size_t>(ch)] + a * colors[k][static_cast<std::size_t>(ch)];
      }
      auto* out = img.at(y, x);
      for (int ch = 0; ch < 3; ++ch)
        out[ch] = static_cast<std::uint8_t>(
            std::clamp(std::lround(px[static_cast<std::size_t>(ch)] + 2.5 * noise.next()), 0L, 255L));
    }
  return img;
}

}  // namespace treerpo::shapes
