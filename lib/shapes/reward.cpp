// reward.cpp -- segmentation, components, classification and clause checks.
#include "shapes/reward.hpp"

#include <zstd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <numeric>

namespace treerpo::shapes {
namespace {
constexpr int kBackground = -1;
constexpr int kOther = -2;  // far from the background, explained by no palette colour

std::array<double, 3> median_color(const Image& img) {
  std::array<double, 3> out{};
  const std::size_t n = static_cast<std::size_t>(img.height) * img.width;
  std::vector<std::uint8_t> ch(n);
  for (int c = 0; c < 3; ++c) {
    for (std::size_t i = 0; i < n; ++i) ch[i] = img.rgb[i * 3 + static_cast<std::size_t>(c)];
    std::nth_element(ch.begin(), ch.begin() + static_cast<std::ptrdiff_t>(n / 2), ch.end());
    out[static_cast<std::size_t>(c)] = ch[n / 2];
  }
  return out;
}

// The palette colour a pixel lies towards from the background, if it is at least half-way.
int classify_pixel(const std::uint8_t* p, const std::array<double, 3>& bg) {
  int best = kBackground;
  double best_residual = 1e300;
  for (int k = 0; k < kColors; ++k) {
    const auto c = palette(static_cast<Color>(k));
    double dot = 0, norm = 0;
    for (int i = 0; i < 3; ++i) {
      const double d = c[static_cast<std::size_t>(i)] - bg[static_cast<std::size_t>(i)];
      dot += (p[i] - bg[static_cast<std::size_t>(i)]) * d;
      norm += d * d;
    }
    const double alpha = dot / norm;
    if (alpha < 0.5) continue;
    double residual = 0;
    for (int i = 0; i < 3; ++i) {
      const double e =
          p[i] - (bg[static_cast<std::size_t>(i)] +
                  std::min(alpha, 1.0) * (c[static_cast<std::size_t>(i)] - bg[static_cast<std::size_t>(i)]));
      residual += e * e;
    }
    if (residual < best_residual) { best_residual = residual; best = k; }
  }
  if (best_residual < 70.0 * 70.0) return best;
  // Not a palette colour at half strength or more: background, an anti-aliased edge (some
  // palette colour at a lower alpha explains it), or something else drawn.
  double distance = 0;
  for (std::size_t i = 0; i < 3; ++i) distance += (p[i] - bg[i]) * (p[i] - bg[i]);
  if (distance < 80.0 * 80.0) return kBackground;
  for (int k = 0; k < kColors; ++k) {
    const auto c = palette(static_cast<Color>(k));
    double dot = 0, norm = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      dot += (p[i] - bg[i]) * (c[i] - bg[i]);
      norm += (c[i] - bg[i]) * (c[i] - bg[i]);
    }
    const double alpha = std::clamp(dot / norm, 0.0, 1.0);
    double residual = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      const double e = p[i] - (bg[i] + alpha * (c[i] - bg[i]));
      residual += e * e;
    }
    if (residual < 70.0 * 70.0) return kBackground;
  }
  return kOther;
}

// How far a pixel lies from the background towards colour k (0 = background, 1 = colour).
double alpha_towards(const std::uint8_t* p, const std::array<double, 3>& bg, int k) {
  const auto c = palette(static_cast<Color>(k));
  double dot = 0, norm = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    const double d = c[i] - bg[i];
    dot += (p[i] - bg[i]) * d;
    norm += d * d;
  }
  return std::clamp(dot / norm, 0.0, 1.0);
}

double shape_area(Shape s, double size) {
  switch (s) {
    case Shape::circle: return M_PI * size * size / 4;
    case Shape::square: return size * size;
    case Shape::triangle: return size * size / 2;
    case Shape::cross: return 5 * size * size / 9;
  }
  return size * size;
}

// Classifies a component by template matching: each shape is rendered (3x3 supersampling, as the
// renderer does) at the size that gives the component's soft area and around its centroid, with
// small shifts and scalings, and the shape whose template has the highest soft IoU with the
// component's alpha map wins. Robust where bounding-box features are not (6-12 px objects).
struct Fit {
  Shape shape = Shape::circle;
  double iou = 0, size = 0;
};

Fit classify_component(const Image& img, const std::array<double, 3>& bg, int k,
                         const std::vector<std::pair<int, int>>& pixels, const std::vector<int>& label) {
  const int H = img.height, W = img.width;
  int x0 = W, x1 = -1, y0 = H, y1 = -1;
  for (auto [y, x] : pixels) { x0 = std::min(x0, x); x1 = std::max(x1, x); y0 = std::min(y0, y); y1 = std::max(y1, y); }
  x0 = std::max(0, x0 - 2); y0 = std::max(0, y0 - 2); x1 = std::min(W - 1, x1 + 2); y1 = std::min(H - 1, y1 + 2);
  const int ww = x1 - x0 + 1, wh = y1 - y0 + 1;
  // Soft alpha map: the component and the pixels touching it that are not another colour.
  std::vector<char> member(static_cast<std::size_t>(ww * wh), 0);
  for (auto [y, x] : pixels) member[static_cast<std::size_t>((y - y0) * ww + (x - x0))] = 1;
  std::vector<double> alpha(static_cast<std::size_t>(ww * wh), 0.0);
  double mass = 0, mx = 0, my = 0;
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      bool near = false;
      for (int dy = -1; dy <= 1 && !near; ++dy)
        for (int dx = -1; dx <= 1 && !near; ++dx) {
          const int yy = y + dy - y0, xx = x + dx - x0;
          near = yy >= 0 && yy < wh && xx >= 0 && xx < ww && member[static_cast<std::size_t>(yy * ww + xx)];
        }
      const int l = label[static_cast<std::size_t>(y) * W + x];
      if (!near || (l != k && l != -1)) continue;
      const double a =
          member[static_cast<std::size_t>((y - y0) * ww + (x - x0))] ? 1.0 : alpha_towards(img.at(y, x), bg, k);
      alpha[static_cast<std::size_t>((y - y0) * ww + (x - x0))] = a;
      mass += a; mx += a * (x + 0.5); my += a * (y + 0.5);
    }
  mx /= mass;
  my /= mass;
  Fit best;
  best.iou = -1;
  constexpr int kSub = 3;
  for (int si = 0; si < kShapes; ++si) {
    const Shape shape = static_cast<Shape>(si);
    const double base = std::sqrt(mass / shape_area(shape, 1.0));
    for (double scale : {0.92, 1.0, 1.08})
      for (double ox : {-0.4, 0.0, 0.4})
        for (double oy : {-0.4, 0.0, 0.4}) {
          PlacedObject o;
          o.shape = shape;
          o.size = base * scale;
          o.cx = mx + ox;
          o.cy = my + oy - (shape == Shape::triangle ? o.size / 6 : 0.0);  // centroid sits below the centre
          double inter = 0, uni = 0;
          for (int y = 0; y < wh; ++y)
            for (int x = 0; x < ww; ++x) {
              int hits = 0;
              for (int sy = 0; sy < kSub; ++sy)
                for (int sx = 0; sx < kSub; ++sx)
                  hits += covers(o, x0 + x + (sx + 0.5) / kSub, y0 + y + (sy + 0.5) / kSub) ? 1 : 0;
              const double t = hits / double(kSub * kSub), a = alpha[static_cast<std::size_t>(y * ww + x)];
              inter += std::min(t, a);
              uni += std::max(t, a);
            }
          const double iou = uni > 0 ? inter / uni : 0;
          if (iou > best.iou) best = {shape, iou, o.size};
        }
  }
  return best;
}

bool matches(const Detection& d, const ObjectSpec& o) {
  return d.recognised && d.shape == o.shape && (!o.color || d.color == *o.color);
}

int count_matching(const std::vector<Detection>& found, const ObjectSpec& o) {
  int n = 0;
  for (const auto& d : found) n += matches(d, o) ? 1 : 0;
  return n;
}

// b relative to a, as the prompt "<a> <relation> <b>" means it.
bool relation_holds(Relation r, const Detection& a, const Detection& b) {
  const double dx = b.cx - a.cx, dy = b.cy - a.cy;
  switch (r) {
    case Relation::left_of: return dx > 1 && std::fabs(dx) >= std::fabs(dy);
    case Relation::right_of: return dx < -1 && std::fabs(dx) >= std::fabs(dy);
    case Relation::above: return dy > 1 && std::fabs(dy) >= std::fabs(dx);
    case Relation::below: return dy < -1 && std::fabs(dy) >= std::fabs(dx);
  }
  return false;
}

// The objects a prompt names, a count prompt's object repeated `count` times.
std::vector<ObjectSpec> named_objects(const PromptSpec& spec) {
  std::vector<ObjectSpec> out;
  const int copies = spec.kind == TaskKind::counting ? spec.count : 1;
  for (const auto& o : spec.objects)
    for (int k = 0; k < copies; ++k) out.push_back(o);
  return out;
}

// Size of a maximum matching between named objects and matching components (Kuhn's augmenting
// paths; a handful of objects).
int maximum_matching(const std::vector<ObjectSpec>& wanted, const std::vector<Detection>& found) {
  std::vector<int> owner(found.size(), -1);
  std::function<bool(std::size_t, std::vector<char>&)> augment = [&](std::size_t w, std::vector<char>& seen) {
    for (std::size_t d = 0; d < found.size(); ++d) {
      if (seen[d] || !matches(found[d], wanted[w])) continue;
      seen[d] = 1;
      if (owner[d] < 0 || augment(static_cast<std::size_t>(owner[d]), seen)) {
        owner[d] = static_cast<int>(w);
        return true;
      }
    }
    return false;
  };
  int m = 0;
  for (std::size_t w = 0; w < wanted.size(); ++w) {
    std::vector<char> seen(found.size(), 0);
    m += augment(w, seen) ? 1 : 0;
  }
  return m;
}

// Exactly the named objects: as many components as objects, all recognised, and an assignment
// (a permutation of the components) that matches every object and satisfies the relation.
bool exactly_the_objects(const PromptSpec& spec, const std::vector<ObjectSpec>& wanted,
                         const std::vector<Detection>& found) {
  if (found.size() != wanted.size()) return false;
  for (const auto& d : found)
    if (!d.recognised) return false;
  std::vector<std::size_t> order(found.size());
  std::iota(order.begin(), order.end(), 0);
  do {
    bool ok = true;
    for (std::size_t w = 0; ok && w < wanted.size(); ++w) ok = matches(found[order[w]], wanted[w]);
    if (ok && spec.relation) ok = relation_holds(*spec.relation, found[order[0]], found[order[1]]);
    if (ok) return true;
  } while (std::next_permutation(order.begin(), order.end()));
  return false;
}

// Some recognised pair matching the prompt's two objects satisfies its relation.
bool some_pair_related(const PromptSpec& spec, const std::vector<Detection>& found) {
  for (std::size_t a = 0; a < found.size(); ++a)
    for (std::size_t b = 0; b < found.size(); ++b)
      if (a != b && matches(found[a], spec.objects[0]) && matches(found[b], spec.objects[1]) &&
          relation_holds(*spec.relation, found[a], found[b]))
        return true;
  return false;
}

std::string phrase(const ObjectSpec& o) {
  return std::string("a ") + (o.color ? std::string(color_name(*o.color)) + " " : "") + shape_name(o.shape);
}
}  // namespace

std::vector<Detection> detect(const Image& img) {
  const auto bg = median_color(img);
  const int H = img.height, W = img.width;
  std::vector<int> label(static_cast<std::size_t>(H) * W);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) label[static_cast<std::size_t>(y) * W + x] = classify_pixel(img.at(y, x), bg);
  // Components: 4-connected pixels of one label; comp[i] is pixel i's component.
  std::vector<int> comp(label.size(), -1);
  std::vector<std::vector<std::pair<int, int>>> components;
  std::vector<std::pair<int, int>> stack;
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * W + x;
      if (comp[i] >= 0 || label[i] == kBackground) continue;
      const int k = label[i], id = static_cast<int>(components.size());
      components.emplace_back();
      auto& pixels = components.back();
      stack.assign(1, {y, x});
      comp[i] = id;
      while (!stack.empty()) {
        auto [cy, cx] = stack.back();
        stack.pop_back();
        pixels.emplace_back(cy, cx);
        const int ny[4] = {cy - 1, cy + 1, cy, cy}, nx[4] = {cx, cx, cx - 1, cx + 1};
        for (int d = 0; d < 4; ++d) {
          if (ny[d] < 0 || ny[d] >= H || nx[d] < 0 || nx[d] >= W) continue;
          const std::size_t j = static_cast<std::size_t>(ny[d]) * W + nx[d];
          if (comp[j] < 0 && label[j] == k) { comp[j] = id; stack.emplace_back(ny[d], nx[d]); }
        }
      }
    }
  const int min_area = std::max(6, H * W / 160);
  // A fringe: a small component most of whose pixels touch a larger component of another label
  // (an anti-aliased edge of blue over grey reads as purple). It belongs to its neighbour.
  auto is_fringe = [&](int id) {
    const auto& pixels = components[static_cast<std::size_t>(id)];
    if (static_cast<int>(pixels.size()) >= 2 * min_area) return false;
    std::size_t touching = 0;
    for (auto [py, px] : pixels) {
      bool touches = false;
      for (int dy = -1; dy <= 1 && !touches; ++dy)
        for (int dx = -1; dx <= 1 && !touches; ++dx) {
          const int yy = py + dy, xx = px + dx;
          if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
          const int other = comp[static_cast<std::size_t>(yy) * W + xx];
          touches = other >= 0 && other != id && components[static_cast<std::size_t>(other)].size() > pixels.size();
        }
      touching += touches ? 1 : 0;
    }
    return 2 * touching > pixels.size();
  };
  std::vector<Detection> found;
  for (int id = 0; id < static_cast<int>(components.size()); ++id) {
    const auto& pixels = components[static_cast<std::size_t>(id)];
    if (static_cast<int>(pixels.size()) < min_area || is_fringe(id)) continue;
    const int k = label[static_cast<std::size_t>(pixels[0].first) * W + pixels[0].second];
    Detection det;
    det.area = static_cast<int>(pixels.size());
    det.in_palette = k >= 0;
    if (det.in_palette) {
      det.color = static_cast<Color>(k);
      const auto fit = classify_component(img, bg, k, pixels, label);
      det.shape = fit.shape;
      det.fit = fit.iou;
      det.size = fit.size;
      const double side = std::min(H, W);
      det.recognised = fit.iou >= kMinFit && fit.size >= kMinSize * side && fit.size <= kMaxSize * side;
    }
    for (auto [py, px] : pixels) { det.cx += px + 0.5; det.cy += py + 0.5; }
    det.cx /= det.area;
    det.cy /= det.area;
    found.push_back(det);
  }
  return found;
}

ShapesScore score_spec(const PromptSpec& spec, const std::vector<Detection>& found) {
  ShapesScore s;
  s.parsed = true;
  // GenEval's lenient clauses over the recognised objects.
  switch (spec.kind) {
    case TaskKind::single_object:
    case TaskKind::colors:
    case TaskKind::two_objects:
    case TaskKind::color_attr:
      for (const auto& o : spec.objects) s.clauses.push_back({phrase(o), count_matching(found, o) >= 1});
      break;
    case TaskKind::counting: {
      const int n = count_matching(found, spec.objects[0]);
      s.clauses.push_back({std::to_string(spec.count) + " x " + shape_name(spec.objects[0].shape), n == spec.count});
      break;
    }
    case TaskKind::position:
      s.clauses.push_back({phrase(spec.objects[0]), count_matching(found, spec.objects[0]) >= 1});
      s.clauses.push_back({phrase(spec.objects[1]), count_matching(found, spec.objects[1]) >= 1});
      s.clauses.push_back({std::string(shape_name(spec.objects[0].shape)) + " " + relation_name(*spec.relation) + " " +
                               shape_name(spec.objects[1].shape),
                           some_pair_related(spec, found)});
      break;
  }
  int ok = 0;
  for (const auto& c : s.clauses) ok += c.ok ? 1 : 0;
  s.geneval_partial = s.clauses.empty() ? 0 : static_cast<double>(ok) / static_cast<double>(s.clauses.size());
  s.geneval = ok == static_cast<int>(s.clauses.size()) && !s.clauses.empty() ? 1.0 : 0.0;

  // The faithful-image rewards: exactly the named objects, every component counted.
  const auto wanted = named_objects(spec);
  s.strict = exactly_the_objects(spec, wanted, found) ? 1.0 : 0.0;
  s.named = static_cast<int>(wanted.size());
  s.matched = maximum_matching(wanted, found);
  const double f1 = 2.0 * s.matched / static_cast<double>(wanted.size() + found.size());
  s.partial = spec.relation ? (2 * f1 + (some_pair_related(spec, found) ? 1.0 : 0.0)) / 3 : f1;
  return s;
}

const char* strict_failure_name(StrictFailure f) {
  switch (f) {
    case StrictFailure::none: return "none";
    case StrictFailure::unparsed: return "unparsed";
    case StrictFailure::unrecognised: return "unrecognised";
    case StrictFailure::count: return "count";
    case StrictFailure::match: return "match";
    case StrictFailure::relation: return "relation";
  }
  return "?";
}

StrictFailure strict_failure(const ShapesScore& score, const std::vector<Detection>& found) {
  if (!score.parsed) return StrictFailure::unparsed;
  if (score.strict > 0) return StrictFailure::none;
  for (const auto& d : found)
    if (!d.recognised) return StrictFailure::unrecognised;
  if (static_cast<int>(found.size()) != score.named) return StrictFailure::count;
  if (score.matched < score.named) return StrictFailure::match;
  return StrictFailure::relation;
}

ShapesScore score_shapes(const std::string& prompt, const Image& image) {
  const auto spec = parse_prompt(prompt);
  if (!spec) return {};
  return score_spec(*spec, detect(image));
}

double compressibility(const Image& image) {
  std::vector<char> out(ZSTD_compressBound(image.rgb.size()));
  const std::size_t n = ZSTD_compress(out.data(), out.size(), image.rgb.data(), image.rgb.size(), 3);
  if (ZSTD_isError(n)) return 0;
  return -static_cast<double>(n) / (static_cast<double>(image.height) * image.width);
}

double brightness(const Image& image) {
  double sum = 0;
  const std::size_t n = static_cast<std::size_t>(image.height) * image.width;
  for (std::size_t i = 0; i < n; ++i)
    sum += 0.299 * image.rgb[3 * i] + 0.587 * image.rgb[3 * i + 1] + 0.114 * image.rgb[3 * i + 2];
  return n ? sum / (255.0 * static_cast<double>(n)) : 0;
}

double saturation(const Image& image) {
  double sum = 0;
  const std::size_t n = static_cast<std::size_t>(image.height) * image.width;
  for (std::size_t i = 0; i < n; ++i) {
    const auto* p = &image.rgb[3 * i];
    const int hi = std::max({p[0], p[1], p[2]}), lo = std::min({p[0], p[1], p[2]});
    sum += hi > 0 ? static_cast<double>(hi - lo) / hi : 0;
  }
  return n ? sum / static_cast<double>(n) : 0;
}

}  // namespace treerpo::shapes
