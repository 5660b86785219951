// test_training.cpp -- the RL objective of `update`: the clipped surrogate and its gradient
// against a float64 closed form, eta = 0 as fixed clipping, ratio = 1 and nothing clipped at the
// first minibatch of a fresh rollout, lambda = 0 as plain GRPO, a resumed update equal to an
// uninterrupted one, the lambda schedules, Slurm node lists and launcher environments.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "advantage/edge_advantages.hpp"
#include "core/error.hpp"
#include "flow/schedule.hpp"
#include "model/builtin_dit.hpp"
#include "rollout/tree_sampler.hpp"
#include "training/grpo.hpp"
#include "training/nft.hpp"
#include "training/sft.hpp"
#include "test_util.hpp"

using namespace treerpo;
using namespace treerpo::training;

namespace {
model::BuiltinPolicy tiny_policy() {
  return model::BuiltinPolicy(model::DitConfig{16, 3, 4, 32, 1, 2, 2, 8},
                              model::Tokenizer(model::Tokenizer::default_words()), 5);
}

// A scored, advantage-bearing tree rollout of the tiny policy: T = 5, binary depth 2 at l = 1.
format::Trajectory scored_rollout(model::Policy& p, double guidance = 1.0) {
  rollout::SamplerConfig c;
  c.sigmas = flow::shifted_sigmas(5, 3.0);
  c.window_start = 1;
  c.branching = {2, 2};
  c.noise_levels = rollout::dynamic_noise(0.7, 0.5, 2);
  c.guidance = guidance;
  c.seed = 3;
  format::Trajectory t;
  const std::vector<std::string> texts{"a red circle", "three blue squares", "a green triangle"};
  t.prompts.text = texts;
  t.prompts.id = {4, 5, 6};
  EXPECT_TRUE(rollout::sample_tree(p, p.encode(texts), t.prompts.id, 0, c, t));
  auto& r = t.rollout;
  r.sigmas = c.sigmas;
  r.steps = 5;
  r.depth = 2;
  r.branching = c.branching;
  r.window_start = 1;
  r.noise_levels = c.noise_levels;
  r.latent_shape = {3, 16, 16};
  r.settings = "{\"guidance\": " + std::to_string(guidance) + "}";
  r.guidance = guidance;
  // A reward per leaf: the mean of its red channel (differs between leaves).
  format::Reward reward;
  reward.name = "red";
  const auto G = static_cast<std::int64_t>(t.leaves.size());
  for (std::int64_t g = 0; g < G; ++g) {
    double s = 0;
    for (std::int64_t e = 0; e < 16 * 16; ++e) s += t.leaves.latent.data[static_cast<std::size_t>(g * 3 * 256 + e)];
    reward.values.push_back(static_cast<float>(s / 256));
  }
  t.rewards.push_back(reward);
  advantage::Forest forest{t.nodes.parent, t.nodes.prompt, t.nodes.depth, t.leaves.node, t.prompts.text.size()};
  const auto a = advantage::compute(forest, {{"red", 1.0, std::vector<double>(reward.values.begin(), reward.values.end())}},
                                    advantage::Settings{});
  format::Advantages adv;
  adv.method = "tree";
  adv.edge.assign(a.edge.begin(), a.edge.end());
  t.advantages = adv;
  format::check_invariants(t, "scored");
  return t;
}

std::vector<torch::Tensor> weights(const model::Policy& p) {
  std::vector<torch::Tensor> out;
  for (const auto& [name, w] : p.named_parameters()) out.push_back(w.detach().clone());
  return out;
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, (a[i] - b[i]).abs().max().item<double>());
  return m;
}

RlResult train(model::Policy& p, const format::Trajectory& t, RlConfig c, OptimizerState state = {},
               std::int64_t start = 0, std::vector<MinibatchMetrics>* seen = nullptr, double* replay = nullptr) {
  Communicator single(LaunchInfo{}, std::chrono::seconds(1));
  return train_rl(p, nullptr, {{"scored", &t}}, nullptr, c, std::move(state), start, single,
                  [&](double dev) { if (replay) *replay = dev; },
                  [&](const MinibatchMetrics& m) { if (seen) seen->push_back(m); return true; });
}
}  // namespace

TEST(Training, SurrogateAndGradientMatchAFloat64ClosedForm) {
  torch::manual_seed(0);
  const std::int64_t E = 200;
  const auto old = torch::randn({E}, torch::kDouble) * 0.1;
  const auto lp64 = old + torch::randn({E}, torch::kDouble) * 3e-4;  // ratios around the 1e-4 bounds
  const auto adv = torch::randn({E}, torch::kDouble) * 1.5;
  const double eta = 0.5, lo = 1e-4, hi = 2e-4;
  auto lp = lp64.to(torch::kFloat).requires_grad_(true);
  const auto s = clipped_surrogate(lp, old.to(torch::kFloat), adv.to(torch::kFloat), eta, lo, hi);
  s.loss.mean().backward();
  // float64 reference, element by element.
  double loss = 0;
  std::int64_t clipped = 0, outside = 0;
  for (std::int64_t e = 0; e < E; ++e) {
    const double a = adv[e].item<double>(), rho = std::exp(lp64[e].item<double>() - old[e].item<double>());
    const double g = std::clamp(std::exp(eta * a), 0.5, 2.0);
    const double l = 1 - lo * g, h = 1 + hi * g;
    const double unclipped = -a * rho, bounded = -a * std::clamp(rho, l, h);
    loss += std::max(unclipped, bounded) / E;
    outside += rho < l || rho > h;
    clipped += (a > 0 && rho > h) || (a < 0 && rho < l);  // clipping removes the gradient
    // d/dlp: the unclipped branch is active when it is the larger (ties only at the bounds).
    const double grad = unclipped >= bounded ? -a * rho / E : 0.0;
    EXPECT_NEAR(lp.grad()[e].item<double>(), grad, 1e-6 * std::abs(a) + 1e-9) << "edge " << e;
  }
  EXPECT_NEAR(s.loss.mean().item<double>(), loss, 1e-6);
  EXPECT_EQ(s.clipped.sum().item<std::int64_t>(), clipped);
  EXPECT_EQ(s.outside.sum().item<std::int64_t>(), outside);
  EXPECT_GT(clipped, 10);  // the case exercises both branches
  EXPECT_LT(clipped, outside - 10);
}

TEST(Training, EtaZeroIsFixedClipping) {
  torch::manual_seed(1);
  const auto old = torch::randn({100});
  const auto lp = old + torch::randn({100}) * 3e-4;
  const auto adv = torch::randn({100}) * 2;
  const auto s = clipped_surrogate(lp, old, adv, 0.0, 1e-4, 1e-4);
  const auto rho = torch::exp(lp - old);
  const auto fixed = torch::max(-adv * rho, -adv * torch::clamp(rho, 1 - 1e-4, 1 + 1e-4));
  EXPECT_TRUE(torch::equal(s.loss, fixed));
  // With eta > 0, positive advantages get wider bounds: never more clipped.
  const auto wide = clipped_surrogate(lp, old, adv, 0.5, 1e-4, 1e-4);
  EXPECT_FALSE((wide.clipped & (adv > 0) & s.clipped.logical_not()).any().item<bool>());
}

TEST(Training, LambdaSchedules) {
  EXPECT_DOUBLE_EQ(lambda_at(LambdaSchedule::constant, 0.1, 100, 70), 0.1);
  EXPECT_DOUBLE_EQ(lambda_at(LambdaSchedule::linear, 0.1, 100, 0), 0.1);
  EXPECT_NEAR(lambda_at(LambdaSchedule::linear, 0.1, 100, 25), 0.075, 1e-15);
  EXPECT_DOUBLE_EQ(lambda_at(LambdaSchedule::linear, 0.1, 100, 150), 0.0);
  EXPECT_NEAR(lambda_at(LambdaSchedule::cosine, 0.1, 100, 50), 0.05, 1e-15);
}

TEST(Training, FreshRolloutReplaysWithRatioOneAndNothingClipped) {
  for (double guidance : {1.0, 3.0}) {
    auto p = tiny_policy();
    const auto t = scored_rollout(p, guidance);
    RlConfig c;
    c.minibatch = 8;
    std::vector<MinibatchMetrics> seen;
    double replay = -1;
    const auto r = train(p, t, c, {}, 0, &seen, &replay);
    ASSERT_FALSE(seen.empty());
    EXPECT_LT(replay, 1e-5) << "guidance " << guidance;
    EXPECT_LT(seen[0].max_ratio_dev, 1e-5);
    EXPECT_EQ(seen[0].clip_fraction, 0.0);
    EXPECT_NEAR(seen[0].approx_kl, 0.0, 1e-6);
    // 3 prompts x (2 + 4) edges = 18 edges in minibatches of 8: 3 minibatches, 3 optimizer steps.
    EXPECT_EQ(r.minibatches_total, 3);
    EXPECT_EQ(r.state.step, 3);
    EXPECT_EQ(seen[0].edges + seen[1].edges + seen[2].edges, 18);
    EXPECT_GT(seen[0].sft_items, 0);
  }
}

TEST(Training, LambdaZeroIsPlainGrpo) {
  auto a = tiny_policy(), b = tiny_policy();
  const auto t = scored_rollout(a);
  RlConfig c;
  c.minibatch = 8;
  c.lambda = 0;
  train(a, t, c);
  c.objective = RlObjective::grpo;
  train(b, t, c);
  EXPECT_EQ(max_difference(weights(a), weights(b)), 0.0);
  // And lambda > 0 changes the result.
  auto d = tiny_policy();
  c.objective = RlObjective::layertuning;
  c.lambda = 0.5;
  train(d, t, c);
  EXPECT_GT(max_difference(weights(a), weights(d)), 0.0);
}

TEST(Training, ResumedUpdateEqualsUninterrupted) {
  auto whole = tiny_policy(), parts = tiny_policy();
  const auto t = scored_rollout(whole);
  RlConfig c;
  c.minibatch = 4;
  c.epochs = 2;
  c.grad_accum = 2;
  train(whole, t, c);
  RlConfig first = c;
  first.until = 3;  // stops at the next optimizer-step boundary: minibatch 4
  const auto r1 = train(parts, t, first);
  EXPECT_EQ(r1.minibatches_done, 4);
  EXPECT_EQ(r1.state.step, 2);
  EXPECT_GT(max_difference(weights(whole), weights(parts)), 0.0);
  const auto r2 = train(parts, t, c, r1.state, r1.minibatches_done);
  EXPECT_EQ(r2.minibatches_done, r2.minibatches_total);
  EXPECT_EQ(max_difference(weights(whole), weights(parts)), 0.0);
}

TEST(Training, RefusesFilesWithoutAdvantagesAndOtherShapes) {
  auto p = tiny_policy();
  auto t = scored_rollout(p);
  auto no_adv = t;
  no_adv.advantages.reset();
  RlConfig c;
  try {
    train(p, no_adv, c);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("scored: no /advantages"), std::string::npos) << e.what();
  }
  auto other = t;
  other.rollout.latent_shape = {3, 8, 8};
  EXPECT_THROW(train(p, other, c), DataError);
  auto velocity = t;  // the velocity target needs stored velocities
  c.sft_target = SftTarget::velocity;
  EXPECT_THROW(train(p, velocity, c), DataError);
}

TEST(Training, SlurmNodeListsAndLauncherEnvironments) {
  EXPECT_EQ(first_slurm_host("node[03-05,7],gpu1"), "node03");
  EXPECT_EQ(first_slurm_host("gpu1,gpu2"), "gpu1");
  EXPECT_EQ(first_slurm_host("a[1-2]-ib"), "a1-ib");
  EXPECT_EQ(launch_from_environment(std::map<std::string, std::string>{}).world, 1);
  const auto t = launch_from_environment({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.1"},
                                          {"MASTER_PORT", "1234"}, {"LOCAL_RANK", "1"}});
  EXPECT_EQ(t.launcher, "torchrun");
  EXPECT_EQ(t.rank, 1);
  EXPECT_EQ(t.master_port, 1234);
  const auto s = launch_from_environment({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "2"}, {"SLURM_LOCALID", "0"},
                                          {"SLURM_STEP_ID", "0"}, {"SLURM_STEP_NODELIST", "cn[12-13]"}});
  EXPECT_EQ(s.launcher, "slurm");
  EXPECT_EQ(s.world, 4);
  EXPECT_EQ(s.master_addr, "cn12");
  // A batch script (no job step) runs once, whatever SLURM_NTASKS says.
  EXPECT_EQ(launch_from_environment({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "0"}}).world, 1);
  EXPECT_THROW(launch_from_environment({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "x"}}), UsageError);
  EXPECT_THROW(launch_from_environment({{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "x"}}), UsageError);
}

// ---- issue 15: the RL training signal ----
namespace {
void perturb(model::Policy& p, std::uint64_t seed) {  // off the zero-initialised output layers
  torch::NoGradGuard g;
  torch::manual_seed(seed);
  for (auto& [name, t] : p.named_parameters()) t.add_(torch::randn_like(t) * 0.05);
}

std::vector<torch::Tensor> param_grads(const torch::Tensor& y, const std::vector<torch::Tensor>& params) {
  auto g = torch::autograd::grad({y}, params, {}, /*retain_graph=*/true, false, /*allow_unused=*/true);
  for (std::size_t i = 0; i < g.size(); ++i)
    if (!g[i].defined()) g[i] = torch::zeros_like(params[i]);
  return g;
}

double max_rel_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
    scale = std::max(scale, b[i].abs().max().item<double>());
  }
  return diff / std::max(scale, 1e-30);
}
}  // namespace

// (5) With guidance g, the update's mean uses v_u + g (v_c - v_u): by default v_u is detached
// (Flow-GRPO) and the gradient is g dv_c; --train-uncond gives g dv_c - (g - 1) dv_u. The values
// are the sampler's, bit for bit, either way.
TEST(Training, UnconditionalBranchIsDetachedByDefault) {
  auto p = tiny_policy();
  perturb(p, 21);
  torch::manual_seed(22);
  const auto x = torch::randn({3, 3, 16, 16});
  const auto sigma = torch::full({3}, 0.6f);
  const auto cond = p.encode({"a red circle", "two squares", "a cross"});
  const auto params = p.trainable_parameters();
  torch::Tensor sampler;
  {
    torch::NoGradGuard ng;
    sampler = model::guided_velocity(p, x, sigma, cond, 3.0, 64);
  }
  // The two branches from one forward pass of the same rows, as the guided velocity makes it.
  const auto both = p.velocity(torch::cat({x, x}), torch::cat({sigma, sigma}),
                               model::Conditioning::cat({cond, p.null_conditioning(3, cond)}));
  const auto g_c = param_grads(both.slice(0, 0, 3).sum(), params);
  const auto g_u = param_grads(both.slice(0, 3, 6).sum(), params);
  std::vector<torch::Tensor> want_detached, want_trained;
  for (std::size_t i = 0; i < params.size(); ++i) {
    want_detached.push_back(3.0 * g_c[i]);
    want_trained.push_back(3.0 * g_c[i] - 2.0 * g_u[i]);
  }
  EXPECT_GT(max_rel_difference(want_detached, want_trained), 0.05);  // the modes differ here
  for (const bool train_uncond : {false, true}) {
    const auto v = training_velocity(p, x, sigma, cond, 3.0, 64, train_uncond);
    EXPECT_TRUE(torch::equal(v.detach(), sampler)) << "train_uncond " << train_uncond;
    const auto g = param_grads(v.sum(), params);
    EXPECT_LT(max_rel_difference(g, train_uncond ? want_trained : want_detached), 1e-4) << "train_uncond " << train_uncond;
  }
  // guidance 1: the conditional velocity alone, with its gradient.
  const auto v1 = training_velocity(p, x, sigma, cond, 1.0, 64, false);
  EXPECT_TRUE(v1.requires_grad());
}

// (7) An edge counts as clipped only when clipping changes its gradient, as in PPO.
TEST(Training, ClipFractionCountsOnlyEdgesWhoseGradientClippingRemoves) {
  //                        above  above  above below below inside
  const std::vector<double> rho{1.001, 1.001, 1.001, 0.999, 0.999, 1.00001};
  const std::vector<float> a{1.0f, -1.0f, 0.0f, -1.0f, 1.0f, 1.0f};
  auto old = torch::zeros({6}, torch::kDouble);
  auto lp = torch::log(torch::tensor(rho, torch::kDouble)).requires_grad_(true);
  const auto s = clipped_surrogate(lp, old, torch::tensor(a), 0.0, 1e-4, 1e-4);
  const std::vector<bool> clipped{true, false, false, true, false, false};
  const std::vector<bool> outside{true, true, true, true, true, false};
  s.loss.sum().backward();
  for (std::int64_t e = 0; e < 6; ++e) {
    EXPECT_EQ(s.clipped[e].item<bool>(), clipped[static_cast<std::size_t>(e)]) << "edge " << e;
    EXPECT_EQ(s.outside[e].item<bool>(), outside[static_cast<std::size_t>(e)]) << "edge " << e;
    // The definition is the gradient's: zero exactly where clipped (or A = 0).
    const bool zero = lp.grad()[e].item<double>() == 0.0;
    EXPECT_EQ(zero, clipped[static_cast<std::size_t>(e)] || a[static_cast<std::size_t>(e)] == 0.0f) << "edge " << e;
  }
}

// (6) A non-finite reward is a data error naming the file and the dataset, not an internal error.
TEST(Training, NonFiniteRewardNamesFileAndDataset) {
  auto p = tiny_policy();
  auto t = scored_rollout(p);
  t.rewards[0].values[5] = NAN;
  try {
    train(p, t, RlConfig{});
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(e.exit_code(), ExitCode::data);
    EXPECT_NE(std::string(e.what()).find("scored: /rewards/red: leaf 5 is nan"), std::string::npos) << e.what();
  }
}

// The best leaf of LayerTuning follows the advantage settings recorded in the file (its reward
// subset, weights, std ddof, eps), not the defaults.
TEST(Training, BestLeafUsesTheRecordedAdvantageSettings) {
  auto p = tiny_policy();
  auto t = scored_rollout(p);
  format::Reward a{"a", 1.0, "{}", {}}, b{"b", 1.0, "{}", {}};
  for (std::size_t g = 0; g < t.leaves.size(); ++g) {
    a.values.push_back(static_cast<float>(g % 4));              // leaf 3 of a prompt is best
    b.values.push_back(static_cast<float>(3 - g % 4) * 10.0f);  // leaf 0 is best
  }
  t.rewards = {a, b};
  // The defaults (both rewards, equal weights): the normalised rewards cancel, no winner.
  t.advantages->settings = "{}";
  for (const auto& best : best_leaves(t, "x")) EXPECT_NEAR(best.advantage, 0.0, 1e-6);
  // advantage --reward a --std sample --eps 0: leaf 3, A* = 1.5 / sample std of {0, 1, 2, 3}.
  t.advantages->settings = R"({"aggregate":"advantage","std":"sample","eps":0,"min_std":1e-6,"clip":5,"weights":{"a":1}})";
  const auto best = best_leaves(t, "x");
  ASSERT_EQ(best.size(), 3u);
  for (std::size_t prompt = 0; prompt < 3; ++prompt) {
    EXPECT_EQ(t.leaves.prompt[static_cast<std::size_t>(best[prompt].leaf)], static_cast<std::int64_t>(prompt));
    EXPECT_EQ(best[prompt].leaf % 4, 3);
    EXPECT_NEAR(best[prompt].advantage, 1.5 / std::sqrt(5.0 / 3.0), 1e-9);
  }
  // Population std (ddof 0) with Flow-GRPO's eps: another A*.
  t.advantages->settings = R"({"std":"population","eps":1e-4,"weights":{"a":1}})";
  EXPECT_NEAR(best_leaves(t, "x")[0].advantage, 1.5 / (std::sqrt(1.25) + 1e-4), 1e-9);
  t.advantages->settings = R"({"std":"ddof2"})";
  EXPECT_THROW(best_leaves(t, "x"), DataError);
}

// Each loss term's gradient is reported apart: norms, and shares of the total that sum to 1.
TEST(Training, EachLossTermsGradientNormAndShareAreReported) {
  auto p = tiny_policy(), q = tiny_policy();
  perturb(p, 5);
  perturb(q, 5);
  const auto t = scored_rollout(p);
  RlConfig c;
  c.minibatch = 8;
  c.lambda = 0.5;
  std::vector<MinibatchMetrics> seen;
  train(p, t, c, {}, 0, &seen);
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& m : seen) {
    EXPECT_GT(m.grad_norm_grpo, 0.0);
    EXPECT_GT(m.grad_norm_sft, 0.0);
    EXPECT_EQ(m.grad_norm_kl, -1.0);
    EXPECT_TRUE(std::isnan(m.grad_share_kl));
    EXPECT_NEAR(m.grad_share_grpo + m.grad_share_sft, 1.0, 1e-6);  // float32 gradients
    // |g| is the norm of the sum of the two terms' gradients.
    EXPECT_LE(m.grad_norm, (m.grad_norm_grpo + m.grad_norm_sft) * (1 + 1e-5));
    EXPECT_GE(m.grad_norm, std::fabs(m.grad_norm_grpo - m.grad_norm_sft) * (1 - 1e-5));
  }
  // GRPO alone: its norm is the total's, its share 1.
  c.objective = RlObjective::grpo;
  seen.clear();
  train(q, t, c, {}, 0, &seen);
  for (const auto& m : seen) {
    EXPECT_NEAR(m.grad_norm_grpo, m.grad_norm, 1e-5 * m.grad_norm);
    EXPECT_NEAR(m.grad_share_grpo, 1.0, 1e-6);
    EXPECT_EQ(m.grad_norm_sft, -1.0);
  }
}

// (3) Both log-probability reductions replay with |rho - 1| < 1e-6 through a trajectory file,
// at 3x32x32 and 16x64x64 latents. The stand-in policy's velocity is elementwise, so that it is the
// same bits in any batch: what is measured is the log-probability's own computation and storage
// (a float32 /nodes/log_prob alone would give ~1e-4 and ~3e-3 under `sum`). A real model adds its
// own non-reproducibility across batchings, which `sum` multiplies by C x H x W (see update(1)).
namespace {
class ElementwisePolicy : public model::Policy {
 public:
  explicit ElementwisePolicy(std::vector<std::int64_t> shape) : shape_(std::move(shape)) {
    w_ = torch::full({1}, 0.8f).requires_grad_(true);
    b_ = torch::full({1}, -0.3f).requires_grad_(true);
  }
  std::string kind() const override { return "elementwise"; }
  torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& sigma, const model::Conditioning& c) override {
    const auto s = sigma.to(torch::kFloat).view({-1, 1, 1, 1});
    const auto t = c.tokens.to(torch::kFloat).select(1, 0).view({-1, 1, 1, 1}) * 0.01f;
    return torch::tanh(x) * w_ + b_ * s + t;
  }
  model::Conditioning encode(const std::vector<std::string>& prompts) const override {
    model::Conditioning c;
    c.tokens = torch::arange(static_cast<std::int64_t>(prompts.size())).view({-1, 1}) + 1;
    return c;
  }
  bool reads_text() const override { return true; }
  model::Conditioning null_conditioning(std::int64_t batch, const model::Conditioning&) const override {
    model::Conditioning c;
    c.tokens = torch::zeros({batch, 1}, torch::kLong);
    return c;
  }
  std::vector<std::int64_t> latent_shape() const override { return shape_; }
  void place(const model::Placement&) override {}
  model::Placement placement() const override { return {}; }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const override { return {{"w", w_}, {"b", b_}}; }
  void save(const std::string&, bool, const std::map<std::string, torch::Tensor>&,
            const std::map<std::string, std::string>&) const override {}

 private:
  std::vector<std::int64_t> shape_;
  torch::Tensor w_, b_;
};
}  // namespace

TEST(Training, BothReductionsReplayWithinOneMillionthThroughAFile) {
  const std::string dir = test::temp_dir();
  for (const auto& [size, channels] : {std::pair<std::int64_t, std::int64_t>{32, 3}, {64, 16}})
    for (const auto reduction : {flow::Reduction::mean, flow::Reduction::sum})
      for (const double guidance : {1.0, 3.0})
        for (const std::int64_t block : {1, 4}) {
        ElementwisePolicy p({channels, size, size});
        rollout::SamplerConfig c;
        c.sigmas = flow::shifted_sigmas(4, 3.0);
        c.window_start = 0;
        c.branching = {2, 2};
        c.noise_levels = rollout::dynamic_noise(0.7, 0.5, 2);
        c.noise_block = block;
        c.reduction = reduction;
        c.guidance = guidance;
        c.images = false;
        c.seed = 1;
        format::Trajectory t;
        t.prompts.text = {"a red circle", "two squares"};
        t.prompts.id = {0, 1};
        ASSERT_TRUE(rollout::sample_tree(p, p.encode(t.prompts.text), t.prompts.id, 0, c, t));
        auto& r = t.rollout;
        r.sigmas = c.sigmas;
        r.steps = 4;
        r.depth = 2;
        r.branching = c.branching;
        r.window_start = 0;
        r.noise_levels = c.noise_levels;
        r.noise_block = block;
        r.logprob_reduction = flow::reduction_name(reduction);
        r.latent_shape = {channels, size, size};
        r.settings = "{\"guidance\": " + std::to_string(guidance) + "}";
        r.guidance = guidance;
        format::Reward reward{"r", 1.0, "{}", {}};
        for (std::size_t g = 0; g < t.leaves.size(); ++g) reward.values.push_back(static_cast<float>(g % 3));
        t.rewards = {reward};
        format::Advantages adv{"tree", "{}", {}};
        for (std::size_t n = 0; n < t.nodes.size(); ++n)
          adv.edge.push_back(t.nodes.parent[n] < 0 ? NAN : (n % 2 ? 0.5f : -0.5f));
        t.advantages = adv;
        const std::string path = dir + "/replay.h5";
        test::write_file(path, t);
        const auto back = test::read_file(path);
        RlConfig rc;
        rc.minibatch = 100;  // every edge in the replayed minibatch
        double replay = -1;
        train(p, back, rc, {}, 0, nullptr, &replay);
        EXPECT_GE(replay, 0.0);
        EXPECT_LT(replay, 1e-6) << flow::reduction_name(reduction) << " " << channels << "x" << size << "x" << size
                                << " guidance " << guidance << " noise block " << block;
      }
}

// The moving average of SFT follows avg_n = d_n avg_{n-1} + (1 - d_n) w_n with
// d_n = min(decay, (1 + n) / (10 + n)), from avg_0 = the initial weights (float64 reference over
// the weights after each step), and a run resumed from its state equals an uninterrupted one.
TEST(Training, SftMovingAverageFollowsItsRecurrenceAndResumes) {
  format::Prompts prompts;
  prompts.text = {"a red circle", "two blue squares", "a green cross", "a yellow triangle"};
  prompts.id = {0, 1, 2, 3};
  format::ByteArray images{{4, 16, 16, 3}, std::vector<std::uint8_t>(4 * 16 * 16 * 3)};
  for (std::size_t i = 0; i < images.data.size(); ++i) images.data[i] = static_cast<std::uint8_t>((i * 37) % 251);
  SftConfig c;
  c.steps = 4;
  c.batch_size = 2;
  c.lr = 1e-2;
  c.ema_decay = 0.6;
  c.seed = 9;

  auto p = tiny_policy();
  std::map<std::string, torch::Tensor> reference;  // float64, by parameter name
  for (const auto& [name, w] : p.named_parameters()) reference[name] = w.detach().to(torch::kDouble).clone();
  const auto state = train_sft(p, c, prompts, images, {}, [&](const StepMetrics& m) {
    const double d = std::min(0.6, (1.0 + static_cast<double>(m.step)) / (10.0 + static_cast<double>(m.step)));
    EXPECT_DOUBLE_EQ(ema_decay_at(0.6, m.step), d);
    for (const auto& [name, w] : p.named_parameters())
      reference[name] = d * reference[name] + (1 - d) * w.detach().to(torch::kDouble);
    return true;
  });
  for (const auto& [name, w] : p.named_parameters()) {
    ASSERT_TRUE(state.tensors.count("ema." + name)) << name;
    EXPECT_LT((state.tensors.at("ema." + name).to(torch::kDouble) - reference[name]).abs().max().item<double>(), 1e-6)
        << name;
  }

  auto q = tiny_policy();
  c.until = 2;
  auto half = train_sft(q, c, prompts, images, {}, nullptr);
  c.until = -1;
  half = train_sft(q, c, prompts, images, half, nullptr);
  for (const auto& [name, w] : p.named_parameters())
    EXPECT_TRUE(torch::equal(half.tensors.at("ema." + name), state.tensors.at("ema." + name))) << name;

  load_moving_average(q, half);
  for (const auto& [name, w] : q.named_parameters())
    EXPECT_TRUE(torch::equal(w, state.tensors.at("ema." + name))) << name;
}

// ---- issue 17: the NFT objective (DiffusionNFT) ----
// The items are the leaves at keyed noise levels of the schedule, r follows the leaf's advantage,
// and the loss and its gradient at v_theta = v_old match a float64 closed form: there the
// gradient is that of sum_i 2 beta (2 r_i - 1) <v_i, v_old_i - u_i> / n (toward the positive
// leaves' targets, away from the negatives').
TEST(Training, NftItemsLossAndGradientMatchAFloat64ClosedForm) {
  auto p = tiny_policy();
  perturb(p, 11);
  const auto t = scored_rollout(p);
  RlConfig c;
  c.objective = RlObjective::nft;
  c.nft_timesteps = 2;
  c.nft_scale = 0.8;  // some leaves clamp, others not
  c.seed = 9;
  const std::vector<RlInput> in{{"scored", &t}};
  const auto items = nft_items(p, nullptr, in, c);
  const auto n = static_cast<std::int64_t>(t.leaves.size()) * 2;
  ASSERT_EQ(items.size(), n);
  EXPECT_EQ(count_nft_items(in, 2), n);
  const auto adv = leaf_advantages(t, "scored");
  const double numel = 3 * 16 * 16;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto g = static_cast<std::size_t>(i / 2);
    EXPECT_NEAR(items.optimality[i].item<double>(), (1 + std::clamp(adv[g] / 0.8, -1.0, 1.0)) / 2, 1e-6);
    const double s = items.sigma[i].item<double>();
    EXPECT_TRUE(std::find_if(t.rollout.sigmas.begin(), t.rollout.sigmas.end() - 1,
                             [&](double x) { return std::abs(x - s) < 1e-6; }) != t.rollout.sigmas.end() - 1);
    // x_sigma and u = e - x0 share the noise e: x + (1 - s)... reconstructs x0 from both.
    const auto x0 = torch::from_blob(const_cast<float*>(t.leaves.latent.data.data()) + g * 3 * 256, {3, 16, 16});
    EXPECT_LT((items.x[i] - s * items.target[i] - x0).abs().max().item<double>(), 1e-5);
  }
  // Keyed: the same items again; another iteration other noise.
  EXPECT_TRUE(torch::equal(nft_items(p, nullptr, in, c).x, items.x));
  auto c2 = c;
  c2.iteration = 1;
  EXPECT_FALSE(torch::equal(nft_items(p, nullptr, in, c2).x, items.x));

  const double beta = 0.7;
  std::vector<std::int64_t> rows(static_cast<std::size_t>(n));
  std::iota(rows.begin(), rows.end(), 0);
  const auto loss = nft_loss_sum(p, items, rows, beta, 5).loss;  // 5 rows per pass: chunking changes nothing
  const auto v = p.velocity(items.x, items.sigma, items.cond);
  const auto vd = v.detach().to(torch::kDouble), vo = items.v_old.to(torch::kDouble);
  const auto u = items.target.to(torch::kDouble), r = items.optimality.to(torch::kDouble).view({-1, 1, 1, 1});
  const auto pos = ((1 - beta) * vo + beta * vd - u).pow(2).flatten(1).mean(1);
  const auto neg = ((1 + beta) * vo - beta * vd - u).pow(2).flatten(1).mean(1);
  const auto expected = (r.flatten() * pos + (1 - r.flatten()) * neg).sum().item<double>();
  EXPECT_NEAR(loss.item<double>(), expected, 1e-5 * std::abs(expected));
  EXPECT_LT((vd - vo).abs().max().item<double>(), 1e-5);  // v_old is the policy before the update
  std::vector<torch::Tensor> params;
  for (const auto& [name, w] : p.named_parameters()) params.push_back(w);
  const auto direction = (2 * beta * (2 * r - 1) * (vo - u) / numel).to(torch::kFloat).detach();
  EXPECT_LT(max_rel_difference(param_grads(loss, params), param_grads((v * direction).sum(), params)), 1e-3);

  // With a reference, the KL term: the sum of the items' mean (v - v_ref)^2.
  auto ref = tiny_policy();
  perturb(ref, 13);
  const auto with_ref = nft_items(p, &ref, in, c);
  EXPECT_TRUE(torch::equal(with_ref.x, items.x));
  const auto kl = nft_loss_sum(p, with_ref, rows, beta, 256).kl.item<double>();
  const auto vr = ref.velocity(items.x, items.sigma, items.cond).detach().to(torch::kDouble);
  const auto expected_kl = (vd - vr).pow(2).flatten(1).mean(1).sum().item<double>();
  EXPECT_GT(expected_kl, 0);
  EXPECT_NEAR(kl, expected_kl, 1e-5 * expected_kl);
  EXPECT_FALSE(nft_loss_sum(p, items, rows, beta, 256).kl.defined());
}

// An NFT update is keyed (the same twice), resumes exactly, counts items rather than edges, makes
// no replay check, and refuses a file without advantages.
TEST(Training, NftUpdateIsKeyedResumesAndCountsItems) {
  auto a = tiny_policy(), b = tiny_policy(), parts = tiny_policy();
  for (auto* q : {&a, &b, &parts}) perturb(*q, 12);
  const auto t = scored_rollout(a);
  RlConfig c;
  c.objective = RlObjective::nft;
  c.minibatch = 4;
  c.grad_accum = 2;
  c.nft_timesteps = 2;
  std::vector<MinibatchMetrics> seen;
  double replay = -7;
  const auto whole = train(a, t, c, {}, 0, &seen, &replay);
  EXPECT_EQ(replay, -7);  // no log-probabilities to replay
  EXPECT_EQ(whole.minibatches_total, static_cast<std::int64_t>(t.leaves.size()) * 2 / 4);
  EXPECT_EQ(rl_units({{"scored", &t}}, c), static_cast<std::int64_t>(t.leaves.size()) * 2);
  for (const auto& m : seen) {
    EXPECT_EQ(m.edges, 0);
    EXPECT_EQ(m.sft_items, 4);
    EXPECT_GT(m.loss_sft, 0);
    EXPECT_EQ(m.loss, m.loss_sft);
  }
  train(b, t, c);
  EXPECT_EQ(max_difference(weights(a), weights(b)), 0.0);
  RlConfig first = c;
  first.until = 2;
  const auto r1 = train(parts, t, first);
  EXPECT_EQ(r1.minibatches_done, 2);
  EXPECT_GT(max_difference(weights(a), weights(parts)), 0.0);
  train(parts, t, c, r1.state, r1.minibatches_done);
  EXPECT_EQ(max_difference(weights(a), weights(parts)), 0.0);
  auto no_adv = t;
  no_adv.advantages.reset();
  EXPECT_THROW(train(b, no_adv, c), DataError);
}
