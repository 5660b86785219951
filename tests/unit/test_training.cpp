// test_training.cpp -- the RL objective of `update`: the clipped surrogate and its gradient
// against a float64 closed form, eta = 0 as fixed clipping, ratio = 1 and nothing clipped at the
// first minibatch of a fresh rollout, lambda = 0 as plain GRPO, a resumed update equal to an
// uninterrupted one, the lambda schedules, Slurm node lists and launcher environments.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "advantage/edge_advantages.hpp"
#include "core/error.hpp"
#include "flow/schedule.hpp"
#include "model/builtin_dit.hpp"
#include "rollout/tree_sampler.hpp"
#include "training/grpo.hpp"

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
  std::int64_t clipped = 0;
  for (std::int64_t e = 0; e < E; ++e) {
    const double a = adv[e].item<double>(), rho = std::exp(lp64[e].item<double>() - old[e].item<double>());
    const double g = std::clamp(std::exp(eta * a), 0.5, 2.0);
    const double l = 1 - lo * g, h = 1 + hi * g;
    const double unclipped = -a * rho, bounded = -a * std::clamp(rho, l, h);
    loss += std::max(unclipped, bounded) / E;
    clipped += rho < l || rho > h;
    // d/dlp: the unclipped branch is active when it is the larger (ties only at the bounds).
    const double grad = unclipped >= bounded ? -a * rho / E : 0.0;
    EXPECT_NEAR(lp.grad()[e].item<double>(), grad, 1e-6 * std::abs(a) + 1e-9) << "edge " << e;
  }
  EXPECT_NEAR(s.loss.mean().item<double>(), loss, 1e-6);
  EXPECT_EQ(s.clipped.sum().item<std::int64_t>(), clipped);
  EXPECT_GT(clipped, 10);  // the case exercises both branches
  EXPECT_LT(clipped, E - 10);
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
  EXPECT_DOUBLE_EQ(lambda_at("constant", 0.1, 100, 70), 0.1);
  EXPECT_DOUBLE_EQ(lambda_at("linear", 0.1, 100, 0), 0.1);
  EXPECT_NEAR(lambda_at("linear", 0.1, 100, 25), 0.075, 1e-15);
  EXPECT_DOUBLE_EQ(lambda_at("linear", 0.1, 100, 150), 0.0);
  EXPECT_NEAR(lambda_at("cosine", 0.1, 100, 50), 0.05, 1e-15);
  EXPECT_THROW(lambda_at("step", 0.1, 100, 1), std::invalid_argument);
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
  c.objective = "grpo";
  train(b, t, c);
  EXPECT_EQ(max_difference(weights(a), weights(b)), 0.0);
  // And lambda > 0 changes the result.
  auto d = tiny_policy();
  c.objective = "layertuning";
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
  c.sft_target = "velocity";
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
