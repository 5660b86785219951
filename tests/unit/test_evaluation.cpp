// test_evaluation.cpp -- evaluate's parts: Student-t tails and the paired comparison against
// independent values, the ODE sampler against a closed form (a model that knows the data point),
// keyed noise, guidance, batch independence, PNG round trip and grid layout, reward names.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "evaluation/bitmap_font.hpp"
#include "evaluation/denoising_probe.hpp"
#include "evaluation/image_grid.hpp"
#include "evaluation/ode_sampler.hpp"
#include "evaluation/paired_stats.hpp"
#include "model/builtin_dit.hpp"
#include "scoring/image_rewards.hpp"
#include "shapes/reward.hpp"
#include "test_util.hpp"

using namespace treerpo;
using namespace treerpo::evaluation;

namespace {
// A model that knows its data: v(x, s) = (x - x0) / s with x0 = a for the conditional prompt
// (token 1) and x0 = 0 for the null prompt (token 0). Euler steps are exact on its straight
// paths, so ODE sampling must end at x0 whatever the noise and the step count.
class KnownTargetPolicy : public model::Policy {
 public:
  explicit KnownTargetPolicy(torch::Tensor a) : a_(std::move(a)) {}
  std::string kind() const override { return "test"; }
  torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& sigma, const model::Conditioning& c) override {
    ++calls;
    rows += x.size(0);
    const auto target = c.tokens.to(torch::kFloat).view({-1, 1, 1, 1}) * a_;
    return (x - target) / sigma.view({-1, 1, 1, 1});
  }
  model::Conditioning encode(const std::vector<std::string>& p) const override {
    model::Conditioning c;
    c.tokens = torch::ones({static_cast<std::int64_t>(p.size()), 1}, torch::kLong);
    return c;
  }
  bool reads_text() const override { return true; }
  model::Conditioning null_conditioning(std::int64_t batch, const model::Conditioning&) const override {
    model::Conditioning c;
    c.tokens = torch::zeros({batch, 1}, torch::kLong);
    return c;
  }
  std::vector<std::int64_t> latent_shape() const override { return {3, 4, 4}; }
  void place(const model::Placement&) override {}
  model::Placement placement() const override { return {}; }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const override { return {}; }
  void save(const std::string&, bool, const std::map<std::string, torch::Tensor>&,
            const std::map<std::string, std::string>&) const override {}
  int calls = 0;
  std::int64_t rows = 0;

 private:
  torch::Tensor a_;
};

std::vector<SampleItem> items_for(std::int64_t prompts, std::int64_t samples) {
  std::vector<SampleItem> items;
  for (std::int64_t p = 0; p < prompts; ++p)
    for (std::int64_t k = 0; k < samples; ++k) items.push_back({p, 100 + p, k});
  return items;
}
}  // namespace

TEST(PairedStats, StudentTMatchesTables) {
  // Two-sided 95% quantiles from standard tables.
  EXPECT_NEAR(student_t_quantile(0.95, 1), 12.706205, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.95, 10), 2.228139, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.95, 30), 2.042272, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.99, 5), 4.032143, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.95, 1e7), 1.959964, 1e-5);
  EXPECT_NEAR(student_t_two_sided_p(2.228139, 10), 0.05, 1e-6);
  EXPECT_NEAR(student_t_two_sided_p(1.0, 1), 0.5, 1e-12);  // Cauchy: P(|T| >= 1) = 1/2
  EXPECT_DOUBLE_EQ(student_t_two_sided_p(0.0, 7), 1.0);
}

TEST(PairedStats, ComparisonAveragesPerPromptFirst) {
  // Prompt 0: two samples, differences 1 and 0 -> 0.5; prompt 1: 0.25; prompt 2: -0.25.
  const std::vector<double> a{0, 1, 0.5, 0.5, 1, 1}, b{1, 1, 0.75, 0.75, 0.75, 0.75};
  const std::vector<std::size_t> prompt{0, 0, 1, 1, 2, 2};
  const auto c = paired_compare(a, b, prompt);
  const double d[3] = {0.5, 0.25, -0.25};
  const double mean = (d[0] + d[1] + d[2]) / 3;
  double ss = 0;
  for (double x : d) ss += (x - mean) * (x - mean);
  const double se = std::sqrt(ss / 2 / 3);
  EXPECT_EQ(c.prompts, 3u);
  EXPECT_EQ(c.pairs, 6u);
  EXPECT_NEAR(c.difference, mean, 1e-12);
  EXPECT_NEAR(c.std_error, se, 1e-12);
  EXPECT_NEAR(c.ci_low, mean - 4.302653 * se, 1e-5);  // t(0.975, 2) = 4.302653
  EXPECT_NEAR(c.ci_high, mean + 4.302653 * se, 1e-5);
  EXPECT_NEAR(c.mean_a, (0.5 + 0.5 + 1.0) / 3, 1e-12);
  EXPECT_NEAR(c.mean_b, (1.0 + 0.75 + 0.75) / 3, 1e-12);
  EXPECT_EQ(c.better, 2u);
  EXPECT_EQ(c.worse, 1u);
  EXPECT_GT(c.p_value, 0.05);
}

TEST(PairedStats, IdenticalScoresGiveZeroWithCertainty) {
  const std::vector<double> a{0.1, 0.4, 0.9, 0.3};
  const auto c = paired_compare(a, a, {0, 1, 2, 3});
  EXPECT_EQ(c.difference, 0);
  EXPECT_EQ(c.ci_low, 0);
  EXPECT_EQ(c.ci_high, 0);
  EXPECT_EQ(c.p_value, 1);
  EXPECT_EQ(c.equal, 4u);
  EXPECT_THROW(paired_compare(a, {1.0}, {0}), std::invalid_argument);
}

TEST(OdeSampler, InitialNoiseIsKeyedByPromptIdAndSample) {
  const std::vector<std::int64_t> shape{3, 4, 4};
  EXPECT_TRUE(torch::equal(initial_noise(5, 7, 2, shape), initial_noise(5, 7, 2, shape)));
  EXPECT_FALSE(torch::equal(initial_noise(5, 7, 2, shape), initial_noise(5, 7, 3, shape)));
  EXPECT_FALSE(torch::equal(initial_noise(5, 7, 2, shape), initial_noise(5, 8, 2, shape)));
  EXPECT_FALSE(torch::equal(initial_noise(5, 7, 2, shape), initial_noise(6, 7, 2, shape)));
  const auto n = initial_noise(1, 0, 0, {3, 32, 32});
  EXPECT_NEAR(n.mean().item<double>(), 0.0, 0.1);
  EXPECT_NEAR(n.std().item<double>(), 1.0, 0.1);
}

TEST(OdeSampler, ExactOnStraightPathsWithAndWithoutGuidance) {
  const auto a = torch::linspace(-0.8, 0.8, 48).view({3, 4, 4});
  KnownTargetPolicy policy(a);
  model::Conditioning cond = policy.encode({"x", "y"});
  OdeSamplerConfig c;
  c.steps = 7;
  const auto out = sample_ode(policy, cond, items_for(2, 3), c);
  EXPECT_EQ(policy.calls, 7);  // one batch of 6 samples per step
  EXPECT_LT((out - a).abs().max().item<double>(), 1e-5);
  // Guidance w: v_u + w (v_c - v_u) = (x - w a) / s, so the path ends at w a; two rows per sample.
  c.guidance = 2.5;
  policy.rows = 0;
  const auto guided = sample_ode(policy, cond, items_for(2, 3), c);
  EXPECT_LT((guided - 2.5 * a).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(policy.rows, 7 * 12);
}

TEST(OdeSampler, ResultDoesNotDependOnTheBatchOrOrder) {
  model::BuiltinPolicy policy(model::DitConfig{16, 3, 4, 32, 1, 2, 2, 8}, model::Tokenizer(model::Tokenizer::default_words()), 3);
  const auto cond = policy.encode({"a red circle", "two blue squares"});
  OdeSamplerConfig c;
  c.steps = 4;
  c.guidance = 2.0;
  auto items = items_for(2, 3);
  const auto whole = sample_ode(policy, cond, items, c);
  c.max_batch = 2;  // one sample per wave
  const auto single = sample_ode(policy, cond, items, c);
  EXPECT_LT((whole - single).abs().max().item<double>(), 1e-4);
  std::reverse(items.begin(), items.end());
  const auto reversed = sample_ode(policy, cond, items, c);
  EXPECT_LT((reversed.flip(0) - whole).abs().max().item<double>(), 1e-4);
  std::size_t waves = 0;
  sample_ode(policy, cond, items, c, [&](std::size_t done) { ++waves; return done < 2; });
  EXPECT_EQ(waves, 2u);  // stopped after the wave that reported 2 done
}

TEST(OdeSampler, ImagesRoundAndClamp) {
  auto x = torch::zeros({1, 3, 1, 2});
  x[0][0][0][0] = -1.5;  // clamps to 0
  x[0][1][0][0] = 1.0;   // 255
  x[0][2][0][1] = 0.002; // 127.755 -> 128
  const auto imgs = to_images(x);
  ASSERT_EQ(imgs.size(), 1u);
  EXPECT_EQ(imgs[0].width, 2);
  EXPECT_EQ(imgs[0].at(0, 0)[0], 0);
  EXPECT_EQ(imgs[0].at(0, 0)[1], 255);
  EXPECT_EQ(imgs[0].at(0, 1)[2], 128);
  EXPECT_EQ(imgs[0].at(0, 1)[0], 128);  // 0 -> 127.5 rounds half away from zero
}

TEST(ImageGrid, PngRoundTripAndLayout) {
  const auto dir = test::temp_dir();
  shapes::Image img;
  img.width = 3;
  img.height = 2;
  for (int i = 0; i < 18; ++i) img.rgb.push_back(static_cast<std::uint8_t>(i * 13));
  write_png(dir + "/a.png", img, false, "test");
  const auto back = read_png(dir + "/a.png");
  EXPECT_EQ(back.width, 3);
  EXPECT_EQ(back.height, 2);
  EXPECT_EQ(back.rgb, img.rgb);
  EXPECT_THROW(write_png(dir + "/a.png", img, false, "test"), UsageError);  // exists
  EXPECT_THROW(read_png(dir + "/missing.png"), NoInputError);

  shapes::Image cell;
  cell.width = cell.height = 8;
  cell.rgb.assign(8 * 8 * 3, 0);
  GridBlock a{"a.safetensors", {{cell, cell}, {cell, cell}}}, b{"b.safetensors", {{cell, cell}, {cell, cell}}};
  const auto grid = compose_grid({"a red circle", "three squares"}, {a, b}, 2);
  // Four 16-pixel cells across, two rows; every cell's pixels are black, the label area has ink.
  EXPECT_GT(grid.width, 4 * 16 + 30 * kGlyphAdvance);
  EXPECT_GT(grid.height, 2 * 16);
  int ink = 0;
  for (int y = 0; y < grid.height; ++y)
    for (int x = 0; x < 30 * kGlyphAdvance; ++x) ink += grid.at(y, x)[0] < 128;
  EXPECT_GT(ink, 50);
  EXPECT_THROW(compose_grid({"one label"}, {a}, 2), std::invalid_argument);
}

TEST(ImageRewards, NamesAndSharedDetection) {
  const auto spec = *shapes::parse_prompt("a red circle and a blue square");
  const auto truth = shapes::render(shapes::layout(spec, 32, 11), 32, 11);
  const auto s = scoring::score_images({"shapes", "shapes-partial", "brightness"}, {truth, truth},
                                       {"a red circle and a blue square", "not a prompt of the grammar"});
  EXPECT_EQ(s[0][0], 1.0);
  EXPECT_EQ(s[1][0], 1.0);
  EXPECT_EQ(s[0][1], 0.0);  // outside the grammar
  EXPECT_DOUBLE_EQ(s[2][0], shapes::brightness(truth));
  EXPECT_DOUBLE_EQ(s[2][1], shapes::brightness(truth));
  EXPECT_THROW(scoring::score_images({"pickscore"}, {truth}, {"x"}), std::invalid_argument);
  EXPECT_THROW(scoring::score_images({"shapes"}, {truth}, {}), std::invalid_argument);
}

// The denoising probe against a closed form: for the model that knows x0 = a, the one-step
// prediction x_s - s v is a at every sigma whatever the noise, so the MSE to a render r is
// mean((a - r)^2), 0 when the render is a.
TEST(DenoisingProbe, OneStepPredictionOfAKnownTargetModel) {
  const auto a = torch::linspace(-0.9, 0.9, 48).view({3, 4, 4});
  KnownTargetPolicy policy(a);
  auto renders = torch::stack({a, a.flip(0) * 0.5});
  const auto r = denoising_probe(policy, renders, policy.encode({"x", "y"}), {0.3, 0.6, 0.9}, 7);
  ASSERT_EQ(r.mse.size(), 3u);
  const double expected = (a - renders).pow(2).mean().item<double>();
  for (std::size_t k = 0; k < 3; ++k) EXPECT_NEAR(r.mse[k], expected, 1e-6) << r.sigmas[k];
  ASSERT_EQ(r.predictions.size(), 3u);
  EXPECT_EQ(r.predictions[0].size(), 2u);
  const auto exact = denoising_probe(policy, a.unsqueeze(0), policy.encode({"x"}), {0.5}, 7);
  EXPECT_LT(exact.mse[0], 1e-12);
  EXPECT_THROW(denoising_probe(policy, renders, policy.encode({"x", "y"}), {1.5}, 7), std::invalid_argument);
}
