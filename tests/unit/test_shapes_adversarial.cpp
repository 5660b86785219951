// test_shapes_adversarial.cpp -- the shapes reward against images that only look like an
// answer: families of adversarial images made by generators of this file (not the renderer's
// layout), each scored <= 2 % strict, with ground-truth renders >= 99 % strict at 32, 48 and
// 64 px, and the detector's decisions on each family checked one by one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/rng.hpp"
#include "shapes/dataset.hpp"
#include "shapes/explain.hpp"
#include "shapes/reward.hpp"

using namespace treerpo;
using namespace treerpo::shapes;

namespace {
std::uint64_t key_of(std::size_t i, std::uint64_t family) {
  return rng::derive_key(family, rng::Domain::synthetic, {i});
}

struct Draws {
  rng::NormalStream s;
  explicit Draws(std::uint64_t key) : s(key) {}
  double u() { return static_cast<double>(s.next_u64() >> 11) * 0x1.0p-53; }
  double in(double lo, double hi) { return lo + (hi - lo) * u(); }
  int pick(int n) { return std::min(n - 1, static_cast<int>(u() * n)); }
};

// A tinted background like the renderer's (an empty scene).
Image background(int size, std::uint64_t key) {
  Scene empty;
  Draws d(key);
  const double base = d.in(195, 240);
  for (double& c : empty.background) c = base + d.in(-8, 8);
  return render(empty, size, key);
}

// Paints the region `inside(x, y)` (pixel units) in colour c with 4x4 supersampling.
void paint(Image& img, const std::array<double, 3>& c, const std::function<bool(double, double)>& inside) {
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      int hits = 0;
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) hits += inside(x + (sx + 0.5) / 4, y + (sy + 0.5) / 4) ? 1 : 0;
      const double a = hits / 16.0;
      auto* p = img.at(y, x);
      for (std::size_t ch = 0; ch < 3; ++ch)
        p[ch] = static_cast<std::uint8_t>(std::lround((1 - a) * p[ch] + a * c[ch]));
    }
}

// The colours a prompt names, or the whole palette when it names none.
std::vector<Color> prompt_colors(const PromptSpec& spec) {
  std::vector<Color> out;
  for (const auto& o : spec.objects)
    if (o.color) out.push_back(*o.color);
  if (out.empty())
    for (int k = 0; k < kColors; ++k) out.push_back(static_cast<Color>(k));
  return out;
}

// --- the families ------------------------------------------------------------------------
Image random_ellipses(const PromptSpec&, int size, std::uint64_t key) {
  Draws d(key);
  auto img = background(size, key);
  const int n = 3 + d.pick(3);
  for (int k = 0; k < n; ++k) {
    const double cx = d.in(0.15, 0.85) * size, cy = d.in(0.15, 0.85) * size;
    const double ax = d.in(0.06, 0.2) * size, ay = d.in(0.06, 0.2) * size, th = d.in(0, M_PI);
    paint(img, palette(static_cast<Color>(d.pick(kColors))), [&](double x, double y) {
      const double u = (x - cx) * std::cos(th) + (y - cy) * std::sin(th), v = -(x - cx) * std::sin(th) + (y - cy) * std::cos(th);
      return (u * u) / (ax * ax) + (v * v) / (ay * ay) <= 1;
    });
  }
  return img;
}

// 5-20 squares of 4x4 pixels on the 4-pixel patch grid, in the prompt's colours.
Image scattered_squares(const PromptSpec& spec, int size, std::uint64_t key) {
  Draws d(key);
  auto img = background(size, key);
  const auto colors = prompt_colors(spec);
  const int cells = size / 4, n = 5 + d.pick(16);
  for (int k = 0; k < n; ++k) {
    const double x0 = 4.0 * d.pick(cells), y0 = 4.0 * d.pick(cells);
    paint(img, palette(colors[static_cast<std::size_t>(d.pick(static_cast<int>(colors.size())))]),
          [&](double x, double y) { return x >= x0 && x < x0 + 4 && y >= y0 && y < y0 + 4; });
  }
  return img;
}

// 4x4 squares in the prompt's colours until 60-80 % of the canvas is covered (the reward-hacked
// loop checkpoint's look).
Image dense_squares(const PromptSpec& spec, int size, std::uint64_t key) {
  Draws d(key);
  auto img = background(size, key);
  const auto colors = prompt_colors(spec);
  const int cells = size / 4;
  const double target = d.in(0.6, 0.8);
  std::vector<int> order(static_cast<std::size_t>(cells * cells));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[static_cast<std::size_t>(d.pick(static_cast<int>(i + 1)))]);
  const auto n = static_cast<std::size_t>(target * static_cast<double>(order.size()));
  for (std::size_t k = 0; k < n; ++k) {
    const double x0 = 4.0 * (order[k] % cells), y0 = 4.0 * (order[k] / cells);
    paint(img, palette(colors[static_cast<std::size_t>(d.pick(static_cast<int>(colors.size())))]),
          [&](double x, double y) { return x >= x0 && x < x0 + 4 && y >= y0 && y < y0 + 4; });
  }
  return img;
}

// One colour of the prompt over 60-90 % of the canvas (a rectangle, or a disc).
Image color_field(const PromptSpec& spec, int size, std::uint64_t key) {
  Draws d(key);
  auto img = background(size, key);
  const auto colors = prompt_colors(spec);
  const auto c = palette(colors[static_cast<std::size_t>(d.pick(static_cast<int>(colors.size())))]);
  const double side = std::sqrt(d.in(0.6, 0.9)) * size, x0 = d.in(0, size - side), y0 = d.in(0, size - side);
  if (d.u() < 0.5)
    paint(img, c, [&](double x, double y) { return x >= x0 && x < x0 + side && y >= y0 && y < y0 + side; });
  else
    paint(img, c, [&](double x, double y) { return std::hypot(x - size / 2.0, y - size / 2.0) <= 0.55 * size; });
  return img;
}

// A correct render plus two blobs of colours the prompt does not name, where they fit.
Image render_plus_blobs(const PromptSpec& spec, int size, std::uint64_t key) {
  Draws d(key);
  auto scene = layout(spec, size, key);
  std::vector<Color> others;
  for (int k = 0; k < kColors; ++k) {
    const auto c = static_cast<Color>(k);
    if (std::none_of(scene.objects.begin(), scene.objects.end(), [&](const PlacedObject& o) { return o.color == c; }))
      others.push_back(c);
  }
  auto img = render(scene, size, key);
  int added = 0;
  for (int attempt = 0; attempt < 2000 && added < 2; ++attempt) {
    const double r = d.in(0.08, 0.14) * size, cx = d.in(r, size - r), cy = d.in(r, size - r);
    bool clear = true;
    for (const auto& o : scene.objects) clear = clear && std::hypot(o.cx - cx, o.cy - cy) > r + o.size / 2 + 2;
    if (!clear) continue;
    const double sx = d.in(0.7, 1.3);  // blobs, not necessarily round
    paint(img, palette(others[static_cast<std::size_t>(d.pick(static_cast<int>(others.size())))]),
          [&](double x, double y) { return std::hypot((x - cx) / sx, y - cy) <= r; });
    scene.objects.push_back({Shape::circle, Color::red, cx, cy, 2 * r});  // keep later blobs apart
    ++added;
  }
  return img;
}

// The prompt's objects, each drawn at three times the renderer's size about the image centre
// region (a single object: centred; several: their layout positions, overlapping allowed).
Image giant_objects(const PromptSpec& spec, int size, std::uint64_t key) {
  auto scene = layout(spec, size, key);
  for (auto& o : scene.objects) {
    o.size *= 3;
    if (scene.objects.size() == 1) o.cx = o.cy = size / 2.0;
  }
  return render(scene, size, key);
}

using Family = Image (*)(const PromptSpec&, int, std::uint64_t);

double strict_rate(Family f, int size, std::size_t n, std::uint64_t family_key) {
  const auto prompts = all_prompts();
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& spec = prompts[(i * 7919) % prompts.size()];
    sum += score_shapes(prompt_text(spec), f(spec, size, key_of(i, family_key))).strict;
  }
  return sum / static_cast<double>(n);
}
}  // namespace

TEST(ShapesReward, GroundTruthRendersPassAtEverySize) {
  for (int size : {32, 48, 64}) {
    const auto samples = make_samples(Split::heldout, 300, size, 11);
    double strict = 0, partial = 0;
    for (const auto& s : samples) {
      const auto score = score_shapes(s.text, s.image);
      strict += score.strict;
      partial += score.partial;
    }
    EXPECT_GE(strict / 300, 0.99) << size << " px";
    EXPECT_GE(partial / 300, 0.99) << size << " px";
  }
}

TEST(ShapesReward, CalibratedFitThreshold) {
  // >= 99 % of rendered objects are recognised (fit and size) at 32, 48 and 64 px.
  for (int size : {32, 48, 64}) {
    std::vector<double> fits;
    std::size_t recognised = 0, objects = 0;
    for (const auto& s : make_samples(Split::train, 400, size, 12)) {
      for (const auto& d : detect(s.image)) {
        fits.push_back(d.fit);
        recognised += d.recognised ? 1 : 0;
      }
      objects += s.spec.kind == TaskKind::counting ? static_cast<std::size_t>(s.spec.count) : s.spec.objects.size();
    }
    std::sort(fits.begin(), fits.end());
    ASSERT_FALSE(fits.empty());
    const double p1 = fits[fits.size() / 100];
    EXPECT_GE(static_cast<double>(recognised) / static_cast<double>(objects), 0.99)
        << size << " px: 1st percentile of fit " << p1 << ", threshold " << kMinFit;
    std::printf("%d px: objects %zu, components %zu, fit min %.3f, 1st percentile %.3f, median %.3f\n", size, objects,
                fits.size(), fits.front(), p1, fits[fits.size() / 2]);
  }
}

struct FamilyCase {
  const char* name;
  Family family;
};

class AdversarialFamily : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(AdversarialFamily, ScoresAtMostTwoPercentStrict) {
  const auto& c = GetParam();
  for (int size : {32, 64}) {
    const double rate = strict_rate(c.family, size, size == 32 ? 300 : 100, std::hash<std::string>{}(c.name));
    EXPECT_LE(rate, 0.02) << c.name << " at " << size << " px";
    std::printf("%-20s %d px: strict %.3f\n", c.name, size, rate);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AdversarialFamily,
                         ::testing::Values(FamilyCase{"random_ellipses", random_ellipses},
                                           FamilyCase{"scattered_squares", scattered_squares},
                                           FamilyCase{"dense_squares", dense_squares},
                                           FamilyCase{"color_field", color_field},
                                           FamilyCase{"render_plus_blobs", render_plus_blobs},
                                           FamilyCase{"giant_objects", giant_objects}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// --- the detector's decisions on each family -----------------------------------------------
TEST(ShapesDetector, A4x4SquareIsAComponentButNoObject) {
  auto img = background(32, 1);
  paint(img, palette(Color::red), [](double x, double y) { return x >= 12 && x < 16 && y >= 12 && y < 16; });
  const auto found = detect(img);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].color, Color::red);
  EXPECT_LT(found[0].size, kMinSize * 32);
  EXPECT_FALSE(found[0].recognised);
}

TEST(ShapesDetector, AThreeTimesLargerCircleIsNotRecognised) {
  auto img = background(64, 2);
  paint(img, palette(Color::blue), [](double x, double y) { return std::hypot(x - 32, y - 32) <= 17; });  // 34 px: 0.53 of the side
  const auto found = detect(img);
  ASSERT_GE(found.size(), 1u);
  EXPECT_GT(found[0].fit, kMinFit);  // the right shape...
  EXPECT_FALSE(found[0].recognised);  // ...at a size the renderer never draws
}

TEST(ShapesDetector, AnElongatedEllipseFitsNoTemplate) {
  auto img = background(32, 3);
  paint(img, palette(Color::green), [](double x, double y) {
    return std::pow((x - 16) / 9.0, 2) + std::pow((y - 16) / 3.0, 2) <= 1;
  });
  const auto found = detect(img);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_LT(found[0].fit, kMinFit);
  EXPECT_FALSE(found[0].recognised);
}

TEST(ShapesDetector, ExtraBlobsAreCountedAndAColourFieldIsNoObject) {
  const auto spec = *parse_prompt("a red circle");
  const auto clean = render(layout(spec, 32, 5), 32, 5);
  const auto blobs = render_plus_blobs(spec, 32, 5);
  EXPECT_EQ(detect(clean).size(), 1u);
  EXPECT_EQ(detect(blobs).size(), 3u);
  EXPECT_EQ(score_shapes("a red circle", clean).strict, 1.0);
  const auto s = score_shapes("a red circle", blobs);
  EXPECT_EQ(s.strict, 0.0);
  EXPECT_NEAR(s.partial, 2.0 / 4.0, 1e-12);  // F1: one match, one named object, three components
  EXPECT_EQ(s.geneval, 1.0);                  // GenEval's lenient reading allows the extras
  for (std::uint64_t k = 0; k < 20; ++k)
    for (const auto& d : detect(color_field(spec, 32, k))) EXPECT_FALSE(d.recognised) << k;
}

TEST(ShapesDetector, OffPaletteJunkIsAComponent) {
  auto img = render(layout(*parse_prompt("a red circle"), 32, 6), 32, 6);
  const auto before = detect(img).size();
  paint(img, {20, 20, 20}, [](double x, double y) { return x >= 1 && x < 7 && y >= 1 && y < 7; });
  const auto found = detect(img);
  ASSERT_EQ(found.size(), before + 1);
  EXPECT_TRUE(std::any_of(found.begin(), found.end(), [](const Detection& d) { return !d.in_palette; }));
  EXPECT_EQ(score_shapes("a red circle", img).strict, 0.0);
}

// explain's first failing reason, on renders scored against their own and other prompts.
TEST(ShapesExplain, FirstFailingReasonInOrder) {
  auto img = background(32, 1);
  paint(img, palette(Color::red), [](double x, double y) { return x >= 12 && x < 16 && y >= 12 && y < 16; });
  EXPECT_EQ(explain_image("a red square", img).failure, StrictFailure::unrecognised);  // a 4x4 speck

  const auto samples = make_samples(Split::heldout, 60, 32, 5);
  std::size_t checked = 0;
  for (const auto& s : samples) {
    if (s.spec.kind != TaskKind::single_object || s.spec.objects[0].color) continue;
    const auto shape = s.spec.objects[0].shape;
    const auto other = shape == Shape::circle ? "a square" : "a circle";
    EXPECT_EQ(explain_image(s.text, s.image).failure, StrictFailure::none) << s.text;
    EXPECT_EQ(explain_image(other, s.image).failure, StrictFailure::match) << s.text;
    EXPECT_EQ(explain_image(std::string("two ") + shape_plural(shape), s.image).failure, StrictFailure::count)
        << s.text;
    EXPECT_EQ(explain_image("a purple elephant", s.image).failure, StrictFailure::unparsed);
    ++checked;
  }
  EXPECT_GT(checked, 0u);
  const auto summary = summarise({explain_image("a red square", img), explain_image("a purple elephant", img)});
  EXPECT_EQ(summary.images, 2u);
  EXPECT_EQ(summary.failures.at("unrecognised"), 1u);
  EXPECT_EQ(summary.components, 2u);
  EXPECT_EQ(summary.recognised, 0u);
  EXPECT_EQ(summary.bad_size + summary.low_fit, 2u);
}
