// test_rollout.cpp -- the tree sampler: NFE equals ALGORITHM.md's formula, a branching-1 tree is
// the ODE/SDE path of one trajectory computed step by step here, stored log-probabilities are
// reproduced from stored parent and child states (ratio = 1, float16 too), and results do not
// depend on batching or on which prompts are sampled together. Window rules and dynamic noise.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/rng.hpp"
#include "flow/noise.hpp"
#include "flow/schedule.hpp"
#include "model/builtin_dit.hpp"
#include "rollout/tree_sampler.hpp"

using namespace treerpo;
using namespace treerpo::rollout;

namespace {
model::BuiltinPolicy tiny_policy() {
  return model::BuiltinPolicy(model::DitConfig{16, 3, 4, 32, 1, 2, 2, 8},
                              model::Tokenizer(model::Tokenizer::default_words()), 5);
}

SamplerConfig config(std::int64_t steps, std::int64_t l, std::vector<std::int64_t> branching) {
  SamplerConfig c;
  c.sigmas = flow::shifted_sigmas(steps, 3.0);
  c.window_start = l;
  c.noise_levels = dynamic_noise(0.7, 0.5, static_cast<std::int64_t>(branching.size()));
  c.branching = std::move(branching);
  c.seed = 11;
  return c;
}

format::Trajectory run(model::Policy& p, const std::vector<std::string>& texts, const SamplerConfig& c,
                       std::vector<std::int64_t> ids = {}) {
  if (ids.empty())
    for (std::size_t i = 0; i < texts.size(); ++i) ids.push_back(static_cast<std::int64_t>(10 + i));
  format::Trajectory t;
  EXPECT_TRUE(sample_tree(p, p.encode(texts), ids, 0, c, t));
  return t;
}

torch::Tensor rows(const format::FloatArray& a) {
  std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end());
  return torch::from_blob(const_cast<float*>(a.data.data()), shape, torch::kFloat).clone();
}
}  // namespace

TEST(Rollout, NfeEqualsTheFormulaForTreesWindowsAndBaselines) {
  auto p = tiny_policy();
  struct Case { std::int64_t T, l; std::vector<std::int64_t> b; std::int64_t roots; };
  for (const auto& k : {Case{6, 0, {2, 2}, 1}, Case{7, 2, {3, 2}, 1}, Case{5, 1, {1, 1, 1}, 1}, Case{5, 5 - 2, {2, 2}, 1},
                        Case{6, 2, {1, 1}, 3}, Case{4, 0, {1, 1, 1, 1}, 2}}) {
    auto c = config(k.T, k.l, k.b);
    c.roots = k.roots;
    auto t = run(p, {"a red circle", "three squares"}, c);
    t.prompts.text = {"a red circle", "three squares"};
    t.prompts.id = {10, 11};
    t.rollout.steps = k.T;
    t.rollout.sigmas = c.sigmas;
    t.rollout.depth = static_cast<std::int64_t>(k.b.size());
    t.rollout.branching = k.b;
    t.rollout.latent_shape = {3, 16, 16};
    const auto formula = k.roots * format::tree_nfe(k.T, k.l, k.b);
    ASSERT_EQ(t.statistics.nfe.size(), 2u);
    EXPECT_EQ(t.statistics.nfe[0], formula);
    EXPECT_EQ(t.statistics.nfe[1], formula);
    EXPECT_EQ(expected_nfe(c), formula);
    std::int64_t width = 1, nodes = 1;
    for (auto b : k.b) nodes += (width *= b);
    EXPECT_EQ(t.nodes.size(), static_cast<std::size_t>(2 * k.roots * nodes));
    EXPECT_EQ(stored_nodes(c), k.roots * nodes);
    EXPECT_EQ(t.leaves.size(), static_cast<std::size_t>(2 * k.roots * width));
    format::check_invariants(t, "sampled");
  }
  // With the trunk stored, the chain of l trunk states precedes each root.
  auto c = config(7, 2, {3, 2});
  c.store_trunk = true;
  EXPECT_EQ(run(p, {"a red circle", "three squares"}, c).nodes.size(), static_cast<std::size_t>(2 * stored_nodes(c)));
  EXPECT_EQ(stored_nodes(c), 2 + 1 + 3 + 6);
  // The default tree: T = 10, binary depth 4 at l = 0 -> 0 + 15 + 16 * 6 = 111, against 160 independent.
  EXPECT_EQ(expected_nfe(config(10, 0, {2, 2, 2, 2})), 111);
}

TEST(Rollout, BranchingOneIsTheStepByStepPathOfOneTrajectory) {
  auto p = tiny_policy();
  auto c = config(6, 2, {1, 1});
  c.guidance = 1.5;
  const auto t = run(p, {"two blue squares"}, c, {7});
  // The same path by hand: ODE trunk, two SDE steps with the node-path keys, ODE suffix.
  torch::NoGradGuard ng;
  const auto cond = p.encode({"two blue squares"});
  auto key = root_key(11, 0, 7, 0);
  auto x = flow::keyed_normal(key, {3, 16, 16}).unsqueeze(0);
  auto vel = [&](const torch::Tensor& xs, std::size_t i) {
    const auto both = p.velocity(torch::cat({xs, xs}), torch::full({2}, c.sigmas[i], torch::kFloat),
                                 model::Conditioning::cat({cond, p.null_conditioning(1, cond)}));
    return both.slice(0, 1, 2) + 1.5 * (both.slice(0, 0, 1) - both.slice(0, 1, 2));
  };
  auto at = [&](std::size_t i) { return flow::StepSigmas{c.sigmas[i], c.sigmas[i + 1], c.sigmas[1]}; };
  for (std::size_t i = 0; i < 2; ++i) x = flow::ode_step(x, vel(x, i), at(i));
  EXPECT_LT((rows(t.nodes.latent)[0] - x[0]).abs().max().item<double>(), 1e-5);
  for (std::size_t k = 0; k < 2; ++k) {
    const auto i = 2 + k;
    key = rng::child_key(key, 0);
    const auto step = flow::sde_step(c.kernel, x, vel(x, i), at(i), c.noise_levels[k],
                                     flow::keyed_normal(key, {3, 16, 16}).unsqueeze(0), c.reduction);
    x = step.next;
    EXPECT_LT((rows(t.nodes.latent)[static_cast<std::int64_t>(k + 1)] - x[0]).abs().max().item<double>(), 1e-5);
    EXPECT_NEAR(t.nodes.log_prob[k + 1], step.log_prob.item<double>(), 1e-4);
    EXPECT_FLOAT_EQ(t.nodes.noise_std[k + 1], static_cast<float>(step.std));
    EXPECT_EQ(t.nodes.noise_key[k + 1], key);
  }
  for (std::size_t i = 4; i < 6; ++i) x = flow::ode_step(x, vel(x, i), at(i));
  EXPECT_LT((rows(t.leaves.latent)[0] - x[0]).abs().max().item<double>(), 1e-5);
  // A branching-1 tree is the window baseline with one trajectory: the same keys, the same file.
  auto w = c;
  w.roots = 1;
  const auto t2 = run(p, {"two blue squares"}, w, {7});
  EXPECT_EQ(t.nodes.latent.data, t2.nodes.latent.data);
}

TEST(Rollout, OdeStrideAndSolverChangeOnlyTheTrunkAndSuffix) {
  auto p = tiny_policy();
  // NFE: trunk ceil(l / S), window, leaves x ceil((T - l - d) / S); the recorded counts agree.
  auto c = config(10, 0, {2, 2, 2, 2});
  c.ode_stride = 2;
  EXPECT_EQ(expected_nfe(c), 15 + 16 * 3);
  c.ode_stride = 4;
  EXPECT_EQ(expected_nfe(c), 15 + 16 * 2);
  auto t7 = config(7, 3, {2});
  t7.ode_stride = 2;
  t7.ode_solver = flow::OdeSolver::dpm2m;
  EXPECT_EQ(expected_nfe(t7), 2 + 1 + 2 * 2);
  EXPECT_EQ(run(p, {"a red circle"}, t7).statistics.nfe[0], expected_nfe(t7));
  t7.store_trunk = true;
  format::Trajectory unused;
  EXPECT_THROW(sample_tree(p, p.encode({"a red circle"}), {1}, 0, t7, unused), std::invalid_argument);

  // With the window at step 0 the window's states and log-probabilities do not depend on the solver.
  auto euler = config(8, 0, {2, 2});
  auto dpm = euler;
  dpm.ode_solver = flow::OdeSolver::dpm2m;
  dpm.ode_stride = 2;
  const auto a = run(p, {"two blue squares"}, euler), b = run(p, {"two blue squares"}, dpm);
  EXPECT_EQ(a.nodes.latent.data, b.nodes.latent.data);
  ASSERT_EQ(a.nodes.log_prob.size(), b.nodes.log_prob.size());
  for (std::size_t i = 1; i < a.nodes.log_prob.size(); ++i) EXPECT_EQ(a.nodes.log_prob[i], b.nodes.log_prob[i]);  // [0]: the root, NaN
  EXPECT_NE(a.leaves.latent.data, b.leaves.latent.data);
}

TEST(Rollout, Dpm2mStrideTwoIsTheSolverStepByStep) {
  auto p = tiny_policy();
  auto c = config(12, 2, {1, 1});
  c.ode_solver = flow::OdeSolver::dpm2m;
  c.ode_stride = 2;
  const auto t = run(p, {"a green cross"}, c, {3});
  torch::NoGradGuard ng;
  const auto cond = p.encode({"a green cross"});
  auto key = root_key(11, 0, 3, 0);
  auto x = flow::keyed_normal(key, {3, 16, 16}).unsqueeze(0);
  auto vel = [&](const torch::Tensor& xs, std::size_t i) {
    return p.velocity(xs, torch::full({1}, c.sigmas[i], torch::kFloat), cond);
  };
  flow::OdeIntegrator trunk(flow::OdeSolver::dpm2m);
  x = trunk.step(x, vel(x, 0), c.sigmas[0], c.sigmas[2]);  // one trunk step over two intervals
  EXPECT_LT((rows(t.nodes.latent)[0] - x[0]).abs().max().item<double>(), 1e-5);
  for (std::size_t k = 0; k < 2; ++k) {  // the window: every schedule step
    const auto i = 2 + k;
    key = rng::child_key(key, 0);
    x = flow::sde_step(c.kernel, x, vel(x, i), {c.sigmas[i], c.sigmas[i + 1], c.sigmas[1]}, c.noise_levels[k],
                       flow::keyed_normal(key, {3, 16, 16}).unsqueeze(0), c.reduction)
            .next;
  }
  flow::OdeIntegrator suffix(flow::OdeSolver::dpm2m);  // a new segment after the window
  for (std::size_t i = 4; i < 12; i += 2) x = suffix.step(x, vel(x, i), c.sigmas[i], c.sigmas[i + 2]);
  EXPECT_LT((rows(t.leaves.latent)[0] - x[0]).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(t.statistics.nfe[0], 1 + 2 + 4);
}

TEST(Rollout, StoredLogProbsAreReproducedFromStoredStates) {
  auto p = tiny_policy();
  for (const bool half : {false, true}) {
    auto c = config(5, 1, {2, 3});
    c.kernel = half ? flow::Kernel::dance : flow::Kernel::flowgrpo;
    if (half) c.storage = torch::kHalf;
    const auto t = run(p, {"a circle", "four crosses"}, c);
    const auto lat = rows(t.nodes.latent);
    const auto cond = p.encode({"a circle", "four crosses"});
    torch::NoGradGuard ng;
    double worst = 0;
    for (std::size_t n = 0; n < t.nodes.size(); ++n) {
      const auto parent = t.nodes.parent[n];
      if (parent < 0) continue;
      const auto i = static_cast<std::size_t>(t.nodes.step[static_cast<std::size_t>(parent)]);
      const auto x = lat[parent].unsqueeze(0);
      const auto pr = t.nodes.prompt[n];
      const auto v = p.velocity(x, torch::full({1}, c.sigmas[i], torch::kFloat), cond.slice(pr, pr + 1));
      const auto tr = flow::transition(c.kernel, x, v, {c.sigmas[i], c.sigmas[i + 1], c.sigmas[1]},
                                       c.noise_levels[static_cast<std::size_t>(t.nodes.depth[n] - 1)]);
      EXPECT_FLOAT_EQ(static_cast<float>(tr.std), t.nodes.noise_std[n]);
      const double lp = flow::log_prob(lat[static_cast<std::int64_t>(n)].unsqueeze(0), tr, c.reduction).item<double>();
      worst = std::max(worst, std::fabs(lp - t.nodes.log_prob[n]));
    }
    // ratio = exp(difference): 1 to within 1e-4 in float32, with float16 storage too.
    EXPECT_LT(worst, 1e-4) << (half ? "float16" : "float32");
    if (half)
      for (float v : t.nodes.latent.data) ASSERT_EQ(v, static_cast<float>(c10::Half(v)));  // stored exactly
  }
}

TEST(Rollout, IndependentOfBatchSizeAndOfWhichPromptsShareAWave) {
  auto p = tiny_policy();
  auto c = config(5, 1, {2, 2});
  c.guidance = 2.0;
  const std::vector<std::string> texts{"a red circle", "three squares", "a cross above a circle"};
  const auto all = run(p, texts, c, {3, 4, 5});
  c.max_batch = 3;
  format::Trajectory parts;
  for (std::int64_t i = 0; i < 3; ++i)  // one prompt per wave, as shards would
    ASSERT_TRUE(sample_tree(p, p.encode({texts[static_cast<std::size_t>(i)]}), {3 + i}, i, c, parts));
  ASSERT_EQ(parts.nodes.size(), all.nodes.size());
  EXPECT_EQ(parts.nodes.parent, all.nodes.parent);
  EXPECT_EQ(parts.nodes.noise_key, all.nodes.noise_key);
  EXPECT_EQ(parts.leaves.node, all.leaves.node);
  EXPECT_LT((rows(parts.nodes.latent) - rows(all.nodes.latent)).abs().max().item<double>(), 1e-4);
  for (std::size_t n = 0; n < all.nodes.size(); ++n)
    if (!std::isnan(all.nodes.log_prob[n])) EXPECT_NEAR(parts.nodes.log_prob[n], all.nodes.log_prob[n], 1e-4);
  // Stopping between steps is reported.
  format::Trajectory stopped;
  EXPECT_FALSE(sample_tree(p, p.encode(texts), {3, 4, 5}, 0, c, stopped, [](std::int64_t) { return false; }));
}

// Issue 15: the noise of a rollout depends on the iteration. With one seed and a fixed window,
// iterations 0 and 1 used to sample bit-identical leaves.
TEST(Rollout, NoiseIsKeyedByTheIteration) {
  auto p = tiny_policy();
  auto c = config(5, 1, {2, 2});
  const std::vector<std::string> texts{"a red circle", "three squares"};
  const auto a = run(p, texts, c);
  c.iteration = 1;
  const auto b = run(p, texts, c);
  const auto b2 = run(p, texts, c);
  EXPECT_NE(a.leaves.latent.data, b.leaves.latent.data);  // another iteration: other leaves
  EXPECT_NE(a.nodes.noise_key, b.nodes.noise_key);
  EXPECT_EQ(b.leaves.latent.data, b2.leaves.latent.data);  // the same iteration: the same leaves
  EXPECT_EQ(b.nodes.noise_key, b2.nodes.noise_key);
  // The stored root key is (seed, iteration, prompt id, root): the root's noise comes back from it.
  EXPECT_EQ(b.nodes.noise_key[0], root_key(11, 1, 10, 0));
  EXPECT_NE(root_key(11, 0, 10, 0), root_key(11, 1, 10, 0));
  // Batching and waves still do not matter at iteration 1.
  c.max_batch = 3;
  format::Trajectory parts;
  for (std::int64_t i = 0; i < 2; ++i)
    ASSERT_TRUE(sample_tree(p, p.encode({texts[static_cast<std::size_t>(i)]}), {10 + i}, i, c, parts));
  EXPECT_EQ(parts.nodes.noise_key, b.nodes.noise_key);
  EXPECT_LT((rows(parts.leaves.latent) - rows(b.leaves.latent)).abs().max().item<double>(), 1e-4);
}

TEST(Rollout, VelocityIsStoredPerNode) {
  auto p = tiny_policy();
  auto c = config(4, 1, {2, 2});
  c.store_velocity = true;
  const auto t = run(p, {"a circle"}, c);
  ASSERT_TRUE(t.nodes.velocity.has_value());
  EXPECT_EQ(t.nodes.velocity->shape, t.nodes.latent.shape);
  // The root's velocity is the model's at the root state.
  torch::NoGradGuard ng;
  const auto v = p.velocity(rows(t.nodes.latent).slice(0, 0, 1), torch::full({1}, c.sigmas[1], torch::kFloat),
                            p.encode({"a circle"}));
  EXPECT_LT((rows(*t.nodes.velocity)[0] - v[0]).abs().max().item<double>(), 1e-5);
  // Leaves ending at sigma = 0 were never evaluated: NaN.
  auto e = config(3, 1, {2, 2});
  e.store_velocity = true;
  const auto t2 = run(p, {"a circle"}, e);
  EXPECT_TRUE(std::isnan(rows(*t2.nodes.velocity)[static_cast<std::int64_t>(t2.leaves.node[0])][0][0][0].item<float>()));
}

TEST(Rollout, WindowRulesAndDynamicNoise) {
  WindowSchedule w;  // progressive, l0 = 0, stride 1, tau = 25, rollback
  EXPECT_EQ(window_start(w, 0, 10, 4, 1), 0);
  EXPECT_EQ(window_start(w, 24, 10, 4, 1), 0);
  EXPECT_EQ(window_start(w, 25, 10, 4, 1), 1);
  EXPECT_EQ(window_start(w, 5 * 25, 10, 4, 1), 5);      // last start with l + d <= T - 1
  EXPECT_EQ(window_start(w, 6 * 25, 10, 4, 1), 0);      // rolled back (issue 15: was 6, ending on sigma = 0)
  EXPECT_EQ(window_start(w, 7 * 25, 10, 4, 1), 1);
  w.overflow = WindowOverflow::clamp;
  EXPECT_EQ(window_start(w, 70 * 25, 10, 4, 1), 5);
  w = WindowSchedule{WindowRule::progressive, 1, 2, 1, WindowOverflow::rollback};
  EXPECT_EQ(window_start(w, 3, 10, 4, 1), 1);  // starts 1, 3, 5: positions cycle
  w.rule = WindowRule::fixed;
  EXPECT_EQ(window_start(w, 99, 10, 4, 1), 1);
  w.rule = WindowRule::random;
  std::set<std::int64_t> seen;
  for (int j = 0; j < 50; ++j) {
    const auto l = window_start(w, j, 10, 4, 1);
    EXPECT_EQ(l, window_start(w, j, 10, 4, 1));  // seeded by (seed, j)
    EXPECT_TRUE(l == 1 || l == 3 || l == 5);
    seen.insert(l);
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_THROW(window_start(WindowSchedule{WindowRule::progressive, 8, 1, 1, WindowOverflow::rollback}, 0, 10, 4, 1), std::invalid_argument);
  // Issue 15: no rule and no overflow rule ever puts a window step on the last step.
  for (const auto rule : {WindowRule::progressive, WindowRule::fixed, WindowRule::random})
    for (const auto overflow : {WindowOverflow::rollback, WindowOverflow::clamp})
      for (std::int64_t l0 = 0; l0 <= 5; ++l0)
        for (std::int64_t stride = 1; stride <= 3; ++stride)
          for (std::int64_t j = 0; j < 400; j += 7) {
            const auto l = window_start(WindowSchedule{rule, l0, stride, 25, overflow}, j, 10, 4, 9);
            ASSERT_LE(l + 4, 10 - 1) << window_rule_name(rule) << " " << window_overflow_name(overflow) << " l0 " << l0 << " j " << j;
            ASSERT_GE(l, l0);
          }
  // A window that would end on the last step does not fit at all.
  EXPECT_THROW(window_start(WindowSchedule{WindowRule::fixed, 6, 1, 25, WindowOverflow::rollback}, 0, 10, 4, 1), std::invalid_argument);
  EXPECT_THROW(window_start(WindowSchedule{WindowRule::progressive, 0, 1, 25, WindowOverflow::clamp}, 0, 4, 4, 1), std::invalid_argument);
  const auto a = dynamic_noise(0.7, 0.5, 4);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_DOUBLE_EQ(a[0], 0.7);
  EXPECT_DOUBLE_EQ(a[3], 0.7 * 1.5);
  EXPECT_DOUBLE_EQ(a[1], 0.7 * (1 + 0.5 / 3));
  EXPECT_DOUBLE_EQ(dynamic_noise(0.7, 0.5, 1)[0], 0.7);
}

TEST(Rollout, StoredTrunkStatesPrecedeTheSameTree) {
  auto p = tiny_policy();
  auto c = config(6, 2, {2, 2});
  c.store_velocity = true;
  const auto plain = run(p, {"a circle", "two squares"}, c);
  c.store_trunk = true;
  const auto full = run(p, {"a circle", "two squares"}, c);
  // Two more trunk nodes per prompt (steps 0 and 1), chained to the window's root at step 2.
  ASSERT_EQ(full.nodes.size(), plain.nodes.size() + 4);
  EXPECT_EQ(full.nodes.parent[0], -1);
  EXPECT_EQ(full.nodes.step[0], 0);
  EXPECT_EQ(full.nodes.parent[1], 0);
  EXPECT_EQ(full.nodes.parent[2], 1);
  EXPECT_EQ(full.nodes.step[2], 2);
  EXPECT_EQ(full.nodes.kind[1], format::NodeKind::trunk);
  const auto root = rows(full.nodes.latent)[0];
  EXPECT_TRUE(torch::equal(root, flow::keyed_normal(root_key(11, 0, 10, 0), {3, 16, 16})));  // the initial noise
  // Everything from the window's root on is the tree sampled without storing the trunk.
  std::vector<std::int64_t> kept;
  for (std::int64_t n = 0; n < static_cast<std::int64_t>(full.nodes.size()); ++n)
    if (!(full.nodes.kind[static_cast<std::size_t>(n)] == format::NodeKind::trunk && full.nodes.step[static_cast<std::size_t>(n)] < 2))
      kept.push_back(n);
  const auto idx = torch::tensor(kept);
  EXPECT_TRUE(torch::equal(rows(full.nodes.latent).index_select(0, idx), rows(plain.nodes.latent)));
  EXPECT_TRUE(torch::equal(rows(*full.nodes.velocity).index_select(0, idx), rows(*plain.nodes.velocity)));
  EXPECT_EQ(full.leaves.latent.data, plain.leaves.latent.data);
  EXPECT_EQ(full.statistics.nfe, plain.statistics.nfe);
}

TEST(Rollout, StoredSuffixStatesAreTheLeavesOdePaths) {
  auto p = tiny_policy();
  {
    torch::NoGradGuard g;  // off the zero-initialised output layers: a velocity that moves the states
    torch::manual_seed(3);
    for (auto& [name, t] : p.named_parameters()) t.add_(torch::randn_like(t) * 0.05);
  }
  auto c = config(6, 1, {2, 2});  // suffix steps 3, 4, 5: stored states at steps 4 and 5
  const std::vector<std::string> texts{"a circle", "two squares"};
  const auto plain = run(p, texts, c);
  c.store_suffix = true;
  const auto full = run(p, texts, c);
  EXPECT_EQ(full.leaves.latent.data, plain.leaves.latent.data);  // storing them changes nothing
  EXPECT_EQ(full.nodes.latent.data, plain.nodes.latent.data);
  ASSERT_TRUE(full.leaves.path.has_value());
  EXPECT_EQ(full.leaves.path->shape, (std::vector<std::uint64_t>{8, 2, 3, 16, 16}));
  // Each stored state is one Euler step from the previous one (from the leaf node, to the final
  // latent), with the model's velocity recomputed here.
  const auto path = rows(*full.leaves.path);
  const auto cond = p.encode(texts);
  const auto nodes = rows(full.nodes.latent), finals = rows(full.leaves.latent);
  for (std::int64_t g = 0; g < 8; ++g) {
    const auto prompt = full.leaves.prompt[static_cast<std::size_t>(g)];
    auto x = nodes[full.leaves.node[static_cast<std::size_t>(g)]].unsqueeze(0);
    for (std::int64_t s = 0; s < 3; ++s) {
      const auto i = 3 + s;
      torch::NoGradGuard no_grad;
      const auto v = model::guided_velocity(p, x, c.sigmas[static_cast<std::size_t>(i)], cond.slice(prompt, prompt + 1), 1.0, 8);
      x = flow::ode_step(x, v, {c.sigmas[static_cast<std::size_t>(i)], c.sigmas[static_cast<std::size_t>(i) + 1], c.sigmas[1]});
      const auto want = s < 2 ? path[g][s] : finals[g];
      EXPECT_LT((x[0] - want).abs().max().item<double>(), 1e-5) << "leaf " << g << " step " << i + 1;
      if (s < 2) EXPECT_GT((path[g][s] - (s ? path[g][s - 1] : nodes[full.leaves.node[static_cast<std::size_t>(g)]])).abs().max().item<double>(), 1e-3);
    }
  }
  c.branching = {2, 2, 2, 2};  // the window ends at the last step but one: nothing to store
  c.noise_levels = dynamic_noise(0.7, 0.5, 4);
  c.window_start = 1;
  c.sigmas = flow::shifted_sigmas(6, 3.0);
  const auto none = run(p, texts, c);
  EXPECT_FALSE(none.leaves.path.has_value());
}
