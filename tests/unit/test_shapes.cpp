// test_shapes.cpp -- the shapes world: grammar round trip and split, rendering, and the exact
// reward on ground truth, on wrong renders, and under noise and blur.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "core/rng.hpp"
#include "format/dataset_file.hpp"
#include "shapes/dataset.hpp"
#include "shapes/reward.hpp"
#include "test_util.hpp"

using namespace treerpo;
using namespace treerpo::shapes;

namespace {
std::uint64_t key_of(std::size_t i) { return rng::derive_key(7, rng::Domain::synthetic, {i}); }

double mean_strict(const std::vector<PromptSpec>& specs, std::size_t n, int size,
                   const std::function<void(Image&, std::size_t)>& damage = {}) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& spec = specs[i % specs.size()];
    auto img = render(layout(spec, size, key_of(i)), size, key_of(i));
    if (damage) damage(img, i);
    sum += score_shapes(prompt_text(spec), img).strict;
  }
  return sum / static_cast<double>(n);
}
}  // namespace

TEST(ShapesGrammar, EveryPromptParsesBackAndTheSplitIsDisjointPerKind) {
  const auto all = all_prompts();
  std::map<TaskKind, int> train, held;
  std::set<std::string> texts;
  for (const auto& p : all) {
    const auto text = prompt_text(p);
    EXPECT_TRUE(texts.insert(text).second) << text;
    const auto back = parse_prompt(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(prompt_text(*back), text);
    EXPECT_EQ(back->kind, p.kind) << text;
    (is_held_out(p) ? held : train)[p.kind]++;
  }
  for (int k = 0; k < kTaskKinds; ++k) {
    EXPECT_GE(held[static_cast<TaskKind>(k)], 1) << task_kind_name(static_cast<TaskKind>(k));
    EXPECT_GE(train[static_cast<TaskKind>(k)], 1) << task_kind_name(static_cast<TaskKind>(k));
  }
  EXPECT_EQ(prompt_text(*parse_prompt("Three Triangles.")), "three triangles");
  EXPECT_FALSE(parse_prompt("a zebra"));
  EXPECT_FALSE(parse_prompt("a red circle and a square"));  // colour attribution needs both colours
  EXPECT_FALSE(parse_prompt("five circles"));
}

TEST(ShapesRender, DeterministicGivenTheKey) {
  const auto spec = *parse_prompt("a red circle left of a blue square");
  const auto a = render(layout(spec, 32, 5), 32, 5), b = render(layout(spec, 32, 5), 32, 5);
  EXPECT_EQ(a.rgb, b.rgb);
  EXPECT_NE(a.rgb, render(layout(spec, 32, 6), 32, 6).rgb);
  EXPECT_EQ(render(layout(spec, 48, 5), 48, 5).rgb.size(), 48u * 48u * 3u);
}

TEST(ShapesReward, GroundTruthScoresStrictlyOne) {
  const auto all = all_prompts();
  EXPECT_GE(mean_strict(all, 3000, 32), 0.99);
  EXPECT_GE(mean_strict(all, 600, 48), 0.99);  // image size is configurable
}

TEST(ShapesReward, WrongColourCountShapeOrPositionScoresZero) {
  const auto all = all_prompts();
  std::size_t n = 0, wrong_ok = 0;
  for (std::size_t i = 0; i < all.size() * 2; ++i) {
    const auto& spec = all[i % all.size()];
    PromptSpec bad = spec;
    switch (spec.kind) {
      case TaskKind::colors:
      case TaskKind::color_attr: {
        // Another colour than asked, and not the other object's colour either.
        int c = static_cast<int>(*spec.objects[0].color);
        for (std::size_t step = 1 + i % 4; step > 0; --step) {
          c = (c + 1) % kColors;
          while (c == static_cast<int>(*spec.objects[0].color) ||
                 (spec.objects.size() > 1 && c == static_cast<int>(*spec.objects[1].color)))
            c = (c + 1) % kColors;
        }
        bad.objects[0].color = static_cast<Color>(c);
        break;
      }
      case TaskKind::counting: bad.count = spec.count == 4 ? 3 : spec.count + 1; break;
      case TaskKind::single_object:
      case TaskKind::two_objects: {
        int sh = static_cast<int>(spec.objects[0].shape);
        for (std::size_t step = 1 + i % 3; step > 0; --step) {
          sh = (sh + 1) % kShapes;
          while (sh == static_cast<int>(spec.objects[0].shape) ||
                 (spec.objects.size() > 1 && sh == static_cast<int>(spec.objects[1].shape)))
            sh = (sh + 1) % kShapes;
        }
        bad.objects[0].shape = static_cast<Shape>(sh);
        break;
      }
      case TaskKind::position: {
        const Relation opposite[] = {Relation::right_of, Relation::left_of, Relation::below, Relation::above};
        bad.relation = opposite[static_cast<int>(*spec.relation)];
        break;
      }
    }
    const auto img = render(layout(bad, 32, key_of(i)), 32, key_of(i));
    const auto s = score_shapes(prompt_text(spec), img);
    ++n;
    wrong_ok += s.strict > 0 ? 1 : 0;
    if (spec.kind == TaskKind::position) {
      EXPECT_NEAR(s.partial, 2.0 / 3.0, 1e-9) << prompt_text(spec);
    }
  }
  EXPECT_LE(static_cast<double>(wrong_ok) / static_cast<double>(n), 0.01) << wrong_ok << " of " << n;
}

TEST(ShapesReward, RobustToNoiseAndBlur) {
  const auto all = all_prompts();
  auto noisy_blurred = [](Image& img, std::size_t i) {
    rng::NormalStream noise(key_of(i + 1000000));
    Image src = img;
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < img.width; ++x)
        for (int c = 0; c < 3; ++c) {
          double sum = 0;
          int n = 0;
          for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
              const int yy = y + dy, xx = x + dx;
              if (yy < 0 || yy >= img.height || xx < 0 || xx >= img.width) continue;
              // A mild blur: the centre weighs as much as its eight neighbours together.
              const double w = (dx == 0 && dy == 0) ? 8.0 : 1.0;
              sum += w * src.at(yy, xx)[c];
              n += static_cast<int>(w);
            }
          img.at(y, x)[c] = static_cast<std::uint8_t>(std::clamp(std::lround(sum / n + 8.0 * noise.next()), 0L, 255L));
        }
  };
  EXPECT_GE(mean_strict(all, 1500, 32, noisy_blurred), 0.95);
}

TEST(ShapesReward, PerClauseResultsAndUnparsablePrompts) {
  const auto spec = *parse_prompt("a red circle and a blue square");
  auto only_circle = spec;
  only_circle.objects.pop_back();
  only_circle.kind = TaskKind::colors;
  const auto img = render(layout(only_circle, 32, 3), 32, 3);
  const auto s = score_shapes("a red circle and a blue square", img);
  ASSERT_EQ(s.clauses.size(), 2u);
  EXPECT_TRUE(s.clauses[0].ok);
  EXPECT_FALSE(s.clauses[1].ok);
  EXPECT_EQ(s.strict, 0.0);
  EXPECT_NEAR(s.partial, 2.0 / 3.0, 1e-12);  // F1: one of two named objects, one component
  EXPECT_EQ(s.geneval, 0.0);
  EXPECT_EQ(s.geneval_partial, 0.5);
  const auto none = score_shapes("a photo of a cat", img);
  EXPECT_FALSE(none.parsed);
  EXPECT_EQ(none.strict, 0.0);
}

TEST(ShapesReward, ContinuousRewards) {
  Image flat{8, 8, std::vector<std::uint8_t>(8 * 8 * 3, 128)}, noisy = flat;
  rng::NormalStream s(1);
  for (auto& v : noisy.rgb) v = static_cast<std::uint8_t>(std::clamp(128.0 + 60 * s.next(), 0.0, 255.0));
  EXPECT_GT(compressibility(flat), compressibility(noisy));
  Image white{2, 2, std::vector<std::uint8_t>(12, 255)};
  EXPECT_NEAR(brightness(white), 1.0, 1e-12);
  EXPECT_NEAR(saturation(flat), 0.0, 1e-12);
  Image red{1, 1, {255, 0, 0}};
  EXPECT_NEAR(saturation(red), 1.0, 1e-12);
}

TEST(ShapesDataset, BalancedKeyedSamplesRoundTripThroughTheFile) {
  const auto a = make_samples(Split::train, 60, 32, 9), b = make_samples(Split::train, 60, 32, 9);
  ASSERT_EQ(a.size(), 60u);
  std::map<TaskKind, int> kinds;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].image.rgb, b[i].image.rgb);  // same seed, same data
    EXPECT_FALSE(is_held_out(a[i].spec)) << a[i].text;
    EXPECT_EQ(score_shapes(a[i].text, a[i].image).strict, 1.0) << a[i].text;
    ++kinds[a[i].spec.kind];
  }
  for (int k = 0; k < kTaskKinds; ++k) EXPECT_EQ(kinds[static_cast<TaskKind>(k)], 10);
  for (const auto& s : make_samples(Split::heldout, 30, 32, 9)) EXPECT_TRUE(is_held_out(s.spec)) << s.text;
  EXPECT_NE(make_samples(Split::train, 6, 32, 10)[0].image.rgb, a[0].image.rgb);
  // Through the data set file.
  format::Dataset d;
  d.kind_labels = task_kind_names();
  d.images.shape = {a.size(), 32, 32, 3};
  for (std::size_t i = 0; i < a.size(); ++i) {
    d.prompts.text.push_back(a[i].text);
    d.prompts.id.push_back(static_cast<std::int64_t>(i));
    d.images.data.insert(d.images.data.end(), a[i].image.rgb.begin(), a[i].image.rgb.end());
    d.kind.push_back(static_cast<std::uint8_t>(a[i].spec.kind));
  }
  const auto dir = test::temp_dir();
  format::write_dataset(dir + "/d.h5", d, false, "test");
  const auto back = format::read_dataset(dir + "/d.h5");
  EXPECT_EQ(back.prompts.text, d.prompts.text);
  EXPECT_EQ(back.images.data, d.images.data);
  EXPECT_EQ(back.kind, d.kind);
  EXPECT_EQ(back.kind_labels, task_kind_names());
}
