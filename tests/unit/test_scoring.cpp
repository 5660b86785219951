// test_scoring.cpp -- TorchScript reward and decoder modules against their own arithmetic, and
// the small modules that tests/cli/score.sh uses (tests/data/*.pt): built here, rewritten with
// TREERPO_UPDATE_GOLDEN=1, otherwise checked to behave like freshly built ones.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>

#include "core/error.hpp"
#include "scoring/torchscript_reward.hpp"
#include "test_util.hpp"

using namespace treerpo;

namespace {
// The mean of the image in [0, 1] (what the reward module sees).
torch::jit::Module mean_reward() {
  torch::jit::Module m("MeanReward");
  m.define(R"(
    def forward(self, images):
        return images.mean(dim=[1, 2, 3])
  )");
  return m;
}

// Uses the prompts' embeddings too.
torch::jit::Module conditioned_reward() {
  torch::jit::Module m("ConditionedReward");
  m.define(R"(
    def forward(self, images, encoder_hidden_states):
        return images.mean(dim=[1, 2, 3]) + encoder_hidden_states.mean(dim=[1, 2])
  )");
  return m;
}

// Latents [B, 4, h, w] -> images [B, 3, 2h, 2w] in [-1, 1].
torch::jit::Module toy_decoder() {
  torch::jit::Module m("ToyDecoder");
  m.define(R"(
    def forward(self, latents):
        x = torch.tanh(latents[:, 0:3] + 0.25 * latents[:, 3:4])
        return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
  )");
  return m;
}

const std::string kData = std::string(TREERPO_SOURCE_DIR) + "/tests/data";
}  // namespace

TEST(Scoring, TorchScriptRewardAndDecoder) {
  const auto dir = test::temp_dir();
  mean_reward().save(dir + "/mean.pt");
  conditioned_reward().save(dir + "/cond.pt");
  toy_decoder().save(dir + "/dec.pt");
  const auto images = torch::randint(0, 256, {5, 6, 7, 3}).to(torch::kByte);
  scoring::TorchScriptReward mean(dir + "/mean.pt", torch::kCPU);
  EXPECT_EQ(mean.arity(), 1u);
  const auto s = mean.score(images, {});
  ASSERT_EQ(s.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(s[static_cast<std::size_t>(i)], images[i].to(torch::kDouble).mean().item<double>() / 255, 1e-6);
  scoring::TorchScriptReward cond(dir + "/cond.pt", torch::kCPU);
  EXPECT_EQ(cond.arity(), 2u);
  EXPECT_THROW(cond.score(images, {}), DataError);  // no embeddings in the file
  model::Conditioning c;
  c.hidden = torch::full({5, 2, 3}, 0.5);
  EXPECT_NEAR(cond.score(images, c)[0], s[0] + 0.5, 1e-6);
  scoring::TorchScriptDecoder dec(dir + "/dec.pt", torch::kCPU);
  const auto lat = torch::randn({2, 4, 3, 3});
  const auto px = dec.decode(lat);
  EXPECT_EQ(px.sizes(), (std::vector<std::int64_t>{2, 6, 6, 3}));
  const double want = std::round((std::tanh(lat[1][2][1][0].item<double>() + 0.25 * lat[1][3][1][0].item<double>()) + 1) * 127.5);
  EXPECT_NEAR(px[1][3][1][2].item<int>(), want, 1);
  EXPECT_THROW(scoring::TorchScriptReward(dir + "/nope.pt", torch::kCPU), NoInputError);
  EXPECT_THROW(scoring::TorchScriptDecoder(dir + "/mean.pt", torch::kCPU).decode(lat), DataError);  // wrong output
}

TEST(Scoring, TestModulesAreCurrent) {
  const std::vector<std::pair<std::string, torch::jit::Module>> modules{
      {"mean_reward.pt", mean_reward()}, {"conditioned_reward.pt", conditioned_reward()}, {"toy_decoder.pt", toy_decoder()}};
  if (std::getenv("TREERPO_UPDATE_GOLDEN")) {
    for (const auto& [name, m] : modules) m.save(kData + "/" + name);
    GTEST_SKIP() << "rewrote " << kData;
  }
  torch::manual_seed(3);
  const auto images = torch::rand({2, 3, 4, 4});
  const auto hidden = torch::rand({2, 3, 5});
  const auto latents = torch::randn({2, 4, 4, 4});
  for (auto [name, fresh] : modules) {
    auto stored = torch::jit::load(kData + "/" + name);
    std::vector<torch::jit::IValue> args;
    if (name == "toy_decoder.pt") args = {latents};
    else if (name == "conditioned_reward.pt") args = {images, hidden};
    else args = {images};
    EXPECT_TRUE(torch::allclose(stored.forward(args).toTensor(), fresh.forward(args).toTensor())) << name;
  }
}
