// test_flow.cpp -- the step kernels against independent float64 computations, the marginal
// preservation property the ODE-to-SDE conversion rests on, and ratio = 1 on replay.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>

#include "flow/ode.hpp"
#include "flow/schedule.hpp"
#include "flow/step.hpp"

using namespace treerpo;
using flow::Kernel;
using flow::Reduction;

namespace {
// ---- independent float64 reference of ALGORITHM.md section 2, element by element ----
struct RefStep { std::vector<double> mean; double std; };
RefStep reference(Kernel k, const std::vector<double>& x, const std::vector<double>& v, double sigma, double sigma_next,
                  double sigma_1, double a) {
  RefStep r;
  const double dt = sigma_next - sigma;
  r.mean.resize(x.size());
  if (k == Kernel::cps) {
    r.std = sigma_next * std::sin(a * M_PI / 2);
    for (std::size_t i = 0; i < x.size(); ++i)
      r.mean[i] = (1 - sigma_next) * (x[i] - sigma * v[i]) +
                  std::sqrt(sigma_next * sigma_next - r.std * r.std) * (x[i] + (1 - sigma) * v[i]);
    return r;
  }
  const double st = sigma == 1.0 ? sigma_1 : sigma;
  const double c = k == Kernel::flowgrpo ? a * std::sqrt(sigma / (1 - st)) : a;
  r.std = c * std::sqrt(-dt);
  for (std::size_t i = 0; i < x.size(); ++i)
    r.mean[i] = x[i] + (v[i] + c * c / (2 * sigma) * (x[i] + (1 - sigma) * v[i])) * dt;
  return r;
}

std::vector<double> to_vec(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}
}  // namespace

TEST(Flow, ScheduleIsShiftedAndDecreasing) {
  const auto s = flow::shifted_sigmas(4, 3.0);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_DOUBLE_EQ(s[1], 3 * 0.75 / (1 + 2 * 0.75));
  EXPECT_EQ(s.front(), 1.0);
  EXPECT_EQ(s.back(), 0.0);
  EXPECT_EQ(flow::shifted_sigmas(4, 1.0)[1], 0.75);  // shift 1 = linear
  EXPECT_THROW(flow::shifted_sigmas(0, 3.0), std::invalid_argument);
}

// Issue 18: diffusers' schedules, against values computed from their code (numpy, float32 as the
// scheduler computes): FlowMatchEulerDiscreteScheduler for SD3 (shift 3) and FluxPipeline's
// dynamic shift.
TEST(Flow, DiffusersSd3AndFluxSchedules) {
  const auto sd3 = flow::schedule_sigmas(flow::Schedule::sd3, 10, 3.0, 0);
  const std::vector<double> want_sd3{1,           0.96012931, 0.913348946, 0.857692308, 0.790368272, 0.707278481,
                                     0.602150538, 0.464876033, 0.278048781, 0.00892857176, 0};
  ASSERT_EQ(sd3.size(), want_sd3.size());
  for (std::size_t i = 0; i < sd3.size(); ++i) EXPECT_NEAR(sd3[i], want_sd3[i], 2e-7) << i;
  const auto flux = flow::schedule_sigmas(flow::Schedule::flux, 4, 3.0, 4096);  // mu = 1.15; shift ignored
  const std::vector<double> want_flux{1, 0.904530767, 0.759510917, 0.512844102, 0};
  ASSERT_EQ(flux.size(), want_flux.size());
  for (std::size_t i = 0; i < flux.size(); ++i) EXPECT_NEAR(flux[i], want_flux[i], 1e-8) << i;
  // The closed form at 256 tokens (mu = 0.5), and the suite's own schedule under its name.
  const auto f256 = flow::schedule_sigmas(flow::Schedule::flux, 4, 1.0, 256);
  EXPECT_NEAR(f256[2], std::exp(0.5) / (std::exp(0.5) + (1 / 0.5 - 1)), 1e-12);
  EXPECT_EQ(flow::schedule_sigmas(flow::Schedule::shifted, 10, 3.0, 0), flow::shifted_sigmas(10, 3.0));
  EXPECT_EQ(flow::parse_schedule("sd3"), flow::Schedule::sd3);
  EXPECT_EQ(flow::schedule_name(flow::Schedule::flux), "flux");
  EXPECT_THROW(flow::parse_schedule("karras"), std::invalid_argument);
  EXPECT_THROW(flow::schedule_sigmas(flow::Schedule::flux, 4, 3.0, 0), std::invalid_argument);
}

// Issue 15: shift / (1 + (shift - 1)) is not exactly 1 for small shifts; the first-step rule of
// the flowgrpo kernel (sigma == 1) was then skipped and the first step's std exploded.
TEST(Flow, FirstSigmaIsExactlyOneForEveryShift) {
  for (double shift = 0.05; shift < 5.0; shift += 0.01) {
    const auto s = flow::shifted_sigmas(10, shift);
    ASSERT_EQ(s.front(), 1.0) << "shift " << shift;
    ASSERT_EQ(s.back(), 0.0) << "shift " << shift;
    for (std::size_t i = 1; i < s.size(); ++i) ASSERT_LT(s[i], s[i - 1]) << "shift " << shift;
    const auto t = flow::transition(flow::Kernel::flowgrpo, torch::zeros({1, 2}), torch::zeros({1, 2}),
                                    {s[0], s[1], s[1]}, 0.7);
    ASSERT_TRUE(std::isfinite(t.std) && t.std < 10.0) << "shift " << shift << ": first-step std " << t.std;
  }
}

TEST(Flow, LogProbabilityEqualsFloat64GaussianDensity) {
  torch::manual_seed(3);
  const auto sig = flow::shifted_sigmas(10, 3.0);
  const auto x = torch::randn({3, 2, 4, 4}), v = torch::randn({3, 2, 4, 4}), eps = torch::randn({3, 2, 4, 4});
  for (Kernel k : {Kernel::flowgrpo, Kernel::dance, Kernel::cps})
    for (Reduction red : {Reduction::mean, Reduction::sum})
      for (int i : {0, 4, 8}) {  // i = 0 exercises the first-step rule
        const flow::StepSigmas s{sig[i], sig[i + 1], sig[1]};
        const auto r = flow::sde_step(k, x, v, s, 0.7, eps, red);
        ASSERT_EQ(r.log_prob.scalar_type(), torch::kDouble);
        const auto xs = to_vec(x), vs = to_vec(v), next = to_vec(r.next);
        for (int b = 0; b < 3; ++b) {
          const std::size_t n = 32, off = static_cast<std::size_t>(b) * n;
          const auto ref = reference(k, {xs.begin() + off, xs.begin() + off + n}, {vs.begin() + off, vs.begin() + off + n},
                                     s.sigma, s.sigma_next, s.sigma_1, 0.7);
          EXPECT_NEAR(r.std, ref.std, 1e-12 * ref.std);
          double total = 0;
          for (std::size_t e = 0; e < n; ++e) {
            EXPECT_NEAR(r.mean.view(-1)[off + e].item<double>(), ref.mean[e], 1e-5 * (1 + std::fabs(ref.mean[e])));
            const double d = next[off + e] - ref.mean[e];
            total += -d * d / (2 * ref.std * ref.std) - std::log(ref.std) - 0.5 * std::log(2 * M_PI);
          }
          const double want = red == Reduction::mean ? total / n : total;
          EXPECT_NEAR(r.log_prob[b].item<double>(), want, 2e-5 * (1 + std::fabs(want)))
              << flow::kernel_name(k) << " step " << i;
        }
      }
}

// Issue 15: a `sum`-reduced log-probability of a large latent is ~1e4-1e5 in size; computed or
// stored in float32 it is off by ~1e-4-1e-2, so exp(l_theta - l_old) could not come out 1.
// Both reductions must give the exact Gaussian log-density of the stored states (the float32
// mean and x', summed in long double here) to within 1e-6 in ratio, at 3x32x32 and 16x64x64.
TEST(Flow, BothReductionsAreExactToOneMillionthInRatio) {
  torch::manual_seed(7);
  const auto sig = flow::shifted_sigmas(10, 3.0);
  for (const auto& shape : {std::vector<std::int64_t>{2, 3, 32, 32}, std::vector<std::int64_t>{2, 16, 64, 64}}) {
    const auto x = torch::randn(shape), v = torch::randn(shape), eps = torch::randn(shape);
    for (Reduction red : {Reduction::mean, Reduction::sum})
      for (int i : {0, 5}) {
        const flow::StepSigmas s{sig[i], sig[i + 1], sig[1]};
        const auto r = flow::sde_step(Kernel::flowgrpo, x, v, s, 0.7, eps, red);
        const auto mean = to_vec(r.mean), next = to_vec(r.next);
        const std::size_t n = mean.size() / 2;
        for (std::size_t b = 0; b < 2; ++b) {
          long double total = 0;
          for (std::size_t e = b * n; e < (b + 1) * n; ++e) {
            const long double d = static_cast<long double>(next[e]) - mean[e];
            total += -d * d / (2.0L * r.std * r.std) - std::log(static_cast<long double>(r.std)) -
                     0.5L * std::log(2.0L * static_cast<long double>(M_PI));
          }
          const long double want = red == Reduction::mean ? total / static_cast<long double>(n) : total;
          const double ratio = std::exp(static_cast<double>(r.log_prob[static_cast<std::int64_t>(b)].item<double>() - want));
          EXPECT_LT(std::fabs(ratio - 1.0), 1e-6)
              << flow::reduction_name(red) << " " << shape[1] << "x" << shape[2] << "x" << shape[3] << " step " << i
              << ": log-probability " << r.log_prob[static_cast<std::int64_t>(b)].item<double>() << ", exact "
              << static_cast<double>(want);
        }
      }
  }
}

TEST(Flow, ArithmeticStaysFloat32ForHalfModels) {
  const auto x = torch::randn({2, 3}).to(torch::kHalf), v = torch::randn({2, 3}).to(torch::kHalf);
  const auto t = flow::transition(Kernel::flowgrpo, x, v, {0.8, 0.6, 0.9}, 0.7);
  EXPECT_EQ(t.mean.scalar_type(), torch::kFloat);
  EXPECT_EQ(flow::ode_step(x, v, {0.8, 0.6, 0.9}).scalar_type(), torch::kFloat);
  EXPECT_THROW(flow::transition(Kernel::flowgrpo, x, v, {0.6, 0.8, 0.9}, 0.7), std::invalid_argument);
}

TEST(Flow, ReplayGivesRatioExactlyOne) {
  torch::manual_seed(5);
  auto model = torch::nn::Linear(16, 16);  // a stand-in velocity model: same weights, same v
  const auto sig = flow::shifted_sigmas(10, 3.0);
  const flow::StepSigmas s{sig[2], sig[3], sig[1]};
  const auto x = torch::randn({4, 16}), eps = torch::randn({4, 16});
  for (Kernel k : {Kernel::flowgrpo, Kernel::dance, Kernel::cps}) {
    const auto sampled = flow::sde_step(k, x, model->forward(x).detach(), s, 0.7, eps, Reduction::mean);
    // Re-evaluation under the same weights, with gradients, as the update stage will do it.
    const auto replay = flow::transition(k, x, model->forward(x), s, 0.7);
    const auto ratio = torch::exp(flow::log_prob(sampled.next, replay, Reduction::mean) - sampled.log_prob);
    EXPECT_TRUE(torch::equal(ratio.detach(), torch::ones({4}))) << flow::kernel_name(k);
    // float16-stored states: the rounding hook keeps the ratio within 1e-6 ...
    const auto half = flow::sde_step(k, x, model->forward(x).detach(), s, 0.7, eps, Reduction::mean, torch::kHalf);
    const auto stored = half.next.to(torch::kHalf).to(torch::kFloat);  // what a file gives back
    EXPECT_TRUE(torch::equal(stored, half.next));
    const auto r16 = torch::exp(flow::log_prob(stored, replay, Reduction::mean) - half.log_prob);
    EXPECT_LT((r16 - 1).abs().max().item<double>(), 1e-6) << flow::kernel_name(k);
    // ... which it would not be without the hook (log-prob of the unrounded state).
    const auto unhooked = flow::sde_step(k, x, model->forward(x).detach(), s, 0.7, eps, Reduction::mean);
    const auto r_bad = torch::exp(flow::log_prob(stored, replay, Reduction::mean) - unhooked.log_prob);
    EXPECT_GT((r_bad - 1).abs().max().item<double>(), 1e-6) << flow::kernel_name(k);
  }
}

// Block noise: P is an orthogonal projection, the step's noise lies in its span, and the
// log-probability is the float64 Gaussian density of the span's coordinates, computed here from
// explicit block sums.
TEST(Flow, BlockNoiseIsAnOrthogonalProjectionAndItsDensity) {
  torch::manual_seed(4);
  const auto a = torch::randn({2, 3, 8, 8}, torch::kDouble), b = torch::randn({2, 3, 8, 8}, torch::kDouble);
  const auto Pa = flow::block_project(a, 4);
  EXPECT_TRUE(torch::allclose(flow::block_project(Pa, 4), Pa, 0, 1e-12));                       // idempotent
  EXPECT_NEAR((Pa * b).sum().item<double>(), (a * flow::block_project(b, 4)).sum().item<double>(), 1e-9);  // symmetric
  EXPECT_NEAR(flow::block_coordinates(a, 4).pow(2).sum().item<double>(), Pa.pow(2).sum().item<double>(), 1e-9);
  EXPECT_TRUE(torch::equal(flow::block_project(a, 1), a));
  EXPECT_THROW(flow::block_project(a, 3), std::invalid_argument);  // 3 does not tile 8
  EXPECT_THROW(flow::block_project(a.flatten(1), 2), std::invalid_argument);

  const auto sig = flow::shifted_sigmas(10, 3.0);
  const auto x = torch::randn({2, 3, 8, 8}), v = torch::randn({2, 3, 8, 8}), eps = torch::randn({2, 3, 8, 8});
  for (Kernel k : {Kernel::flowgrpo, Kernel::dance, Kernel::cps})
    for (Reduction red : {Reduction::mean, Reduction::sum}) {
      const flow::StepSigmas s{sig[3], sig[4], sig[1]};
      const auto r = flow::sde_step(k, x, v, s, 0.7, eps, red, std::nullopt, 4);
      const auto iso = flow::transition(k, x, v, s, 0.7);
      EXPECT_DOUBLE_EQ(r.std, iso.std);
      // Off the span the step is the noiseless one: with P = 0 there, (I - P)(mean) is the
      // isotropic mean minus its score (flowgrpo, dance) or fresh-noise (cps) correction.
      const auto d = r.next.to(torch::kDouble) - r.mean.to(torch::kDouble);
      EXPECT_LT((d - flow::block_project(d, 4)).abs().max().item<double>(), 1e-6) << flow::kernel_name(k);
      const auto xd = x.to(torch::kDouble), vd = v.to(torch::kDouble);
      torch::Tensor want_mean;
      if (k == Kernel::cps) {
        const double sn = s.sigma_next, kept = std::sqrt(sn * sn - r.std * r.std);
        const auto x0 = xd - s.sigma * vd, x1 = xd + (1 - s.sigma) * vd;
        want_mean = (1 - sn) * x0 + sn * x1 + (kept - sn) * flow::block_project(x1, 4);
      } else {
        const double dt = s.sigma_next - s.sigma;
        const double c = k == Kernel::flowgrpo ? 0.7 * std::sqrt(s.sigma / (1 - s.sigma)) : 0.7;
        want_mean = xd + (vd + c * c / (2 * s.sigma) * flow::block_project(xd + (1 - s.sigma) * vd, 4)) * dt;
      }
      EXPECT_LT((r.mean.to(torch::kDouble) - want_mean).abs().max().item<double>(), 1e-5) << flow::kernel_name(k);
      for (int item = 0; item < 2; ++item) {
        double total = 0;
        int coords = 0;
        for (int ch = 0; ch < 3; ++ch)
          for (int bi = 0; bi < 2; ++bi)
            for (int bj = 0; bj < 2; ++bj) {
              double sum = 0;  // the coordinate along the block's unit vector (entries 1/4)
              for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) sum += d[item][ch][4 * bi + i][4 * bj + j].item<double>() / 4;
              total += -sum * sum / (2 * r.std * r.std) - std::log(r.std) - 0.5 * std::log(2 * M_PI);
              ++coords;
            }
        const double want = red == Reduction::mean ? total / coords : total;
        EXPECT_NEAR(r.log_prob[item].item<double>(), want, 1e-9 * (1 + std::fabs(want))) << flow::kernel_name(k);
      }
      // Replay under the same velocity: ratio exactly 1.
      const auto replay = flow::transition(k, x, v, s, 0.7, 4);
      EXPECT_TRUE(torch::equal(flow::log_prob(r.next, replay, red), r.log_prob)) << flow::kernel_name(k);
    }
}

// ---- marginal preservation with closed-form velocity fields ----
namespace {
// Data ~ sum_k w_k N(m_k, c_k^2 I). The exact velocity E[e - x0 | x_s = x] of the interpolant
// x_s = (1 - s) x0 + s e mixes the per-component fields with posterior weights.
struct Mixture {
  std::vector<double> w, c;
  std::vector<torch::Tensor> m;  // [D] each
  torch::Tensor velocity(const torch::Tensor& x, double s) const {
    std::vector<torch::Tensor> logits, fields;
    const double D = static_cast<double>(x.size(1));
    for (std::size_t k = 0; k < w.size(); ++k) {
      const auto mu = (1 - s) * m[k];
      const double var = (1 - s) * (1 - s) * c[k] * c[k] + s * s;
      const auto d = x - mu;
      logits.push_back(std::log(w[k]) - 0.5 * D * std::log(var) - (d * d).sum(1) / (2 * var));
      fields.push_back(-m[k] + (s - (1 - s) * c[k] * c[k]) / var * d);
    }
    const auto r = torch::softmax(torch::stack(logits, 1), 1);  // [N, K]
    auto v = torch::zeros_like(x);
    for (std::size_t k = 0; k < w.size(); ++k) v = v + r.select(1, static_cast<int64_t>(k)).unsqueeze(1) * fields[k];
    return v;
  }
};

// Standard normal noise for x [N, D] in the span of blocks of `block` x `block` elements, with
// D read as one channel of a square image (D = 4: a 2 x 2 image).
torch::Tensor as_image(const torch::Tensor& x) {
  const auto side = static_cast<std::int64_t>(std::lround(std::sqrt(static_cast<double>(x.size(1)))));
  return x.view({x.size(0), 1, side, side});
}
torch::Tensor block_noise(const torch::Tensor& x, std::int64_t block) {
  const auto eps = torch::randn_like(x);
  return block == 1 ? eps : flow::block_project(as_image(eps), block).view_as(x);
}

using TransitionFn = std::function<flow::Transition(const torch::Tensor&, const torch::Tensor&, const flow::StepSigmas&, double)>;

// Samples n points from noise to data; a < 0 means the ODE.
torch::Tensor sample(const Mixture& target, int n, int steps, double a, const TransitionFn& kernel) {
  torch::manual_seed(11);
  const auto sig = flow::shifted_sigmas(steps, 3.0);
  auto x = torch::randn({n, target.m[0].size(0)}, torch::kDouble);
  for (int i = 0; i < steps; ++i) {
    const flow::StepSigmas s{sig[i], sig[i + 1], sig[1]};
    const auto v = target.velocity(x, s.sigma);
    if (a < 0 || i == steps - 1) {  // the last step lands on sigma = 0 deterministically
      x = flow::ode_step(x, v, s);
    } else {
      const auto t = kernel(x, v, s, a);
      x = t.mean + t.std * block_noise(x, t.block);
    }
  }
  return x;
}

const TransitionFn kFlowGrpo = [](const torch::Tensor& x, const torch::Tensor& v, const flow::StepSigmas& s, double a) {
  return flow::transition(Kernel::flowgrpo, x, v, s, a);
};
// A wrong drift: the Ito correction counted twice (c^2 / sigma instead of c^2 / (2 sigma)).
const TransitionFn kWrongDrift = [](const torch::Tensor& x, const torch::Tensor& v, const flow::StepSigmas& s, double a) {
  auto t = flow::transition(Kernel::flowgrpo, x, v, s, a);
  const double sigma_t = s.sigma == 1.0 ? s.sigma_1 : s.sigma, c2 = a * a * s.sigma / (1 - sigma_t);
  t.mean = t.mean + c2 / (2 * s.sigma) * (x + (1 - s.sigma) * v) * (s.sigma_next - s.sigma);
  return t;
};

// Block noise on a 2 x 2 image with block 2: noise along (1, 1, 1, 1) / 2 only, and the score
// term of the drift projected onto it; kBlockWrongDrift keeps the isotropic drift instead.
TransitionFn block_kernel(bool project_drift) {
  return [project_drift](const torch::Tensor& x, const torch::Tensor& v, const flow::StepSigmas& s, double a) {
    auto t = flow::transition(Kernel::flowgrpo, as_image(x), as_image(v), s, a, project_drift ? 2 : 1);
    t.mean = t.mean.view_as(x);
    t.block = 2;
    return t;
  };
}
const TransitionFn kBlock = block_kernel(true), kBlockWrongDrift = block_kernel(false);

// Largest deviation of sample mean and variance from the data's, in units of tolerance.
double gaussian_error(const TransitionFn& kernel, double a, std::int64_t dims = 2) {
  Mixture g{{1.0}, {0.6}, {dims == 2 ? torch::tensor({1.5, -0.5}, torch::kDouble)
                                     : torch::tensor({1.5, -0.5, 0.2, 0.8}, torch::kDouble)}};
  const auto x = sample(g, 40000, 200, a, kernel);
  const double mean_err = (x.mean(0) - g.m[0]).abs().max().item<double>();
  const double var_err = (x.var(0, /*unbiased=*/false) - 0.36).abs().max().item<double>();
  return std::max(mean_err / 0.02, var_err / 0.02);  // ~5 standard errors + discretisation
}

double mixture_error(const TransitionFn& kernel, double a) {
  Mixture g{{0.3, 0.7}, {0.4, 0.5}, {torch::tensor({-2.0}, torch::kDouble), torch::tensor({2.0}, torch::kDouble)}};
  const auto x = sample(g, 40000, 200, a, kernel).squeeze(1);
  const double weight = (x < 0).to(torch::kDouble).mean().item<double>();
  const double mean = x.mean().item<double>(), want_mean = 0.3 * -2 + 0.7 * 2;
  const double var = x.var(0, false).item<double>();
  const double want_var = 0.3 * (0.16 + 4) + 0.7 * (0.25 + 4) - want_mean * want_mean;
  return std::max({std::fabs(weight - 0.3) / 0.01, std::fabs(mean - want_mean) / 0.04, std::fabs(var - want_var) / 0.08});
}
}  // namespace

TEST(FlowMarginals, OdeAndSdeReproduceTheGaussianData) {
  EXPECT_LT(gaussian_error(kFlowGrpo, -1), 1.0) << "ODE";
  for (double a : {0.3, 0.7, 1.0}) EXPECT_LT(gaussian_error(kFlowGrpo, a), 1.0) << "SDE a = " << a;
}

TEST(FlowMarginals, OdeAndSdeReproduceTheMixture) {
  EXPECT_LT(mixture_error(kFlowGrpo, -1), 1.0) << "ODE";
  for (double a : {0.3, 0.7, 1.0}) EXPECT_LT(mixture_error(kFlowGrpo, a), 1.0) << "SDE a = " << a;
}

TEST(FlowMarginals, BlockNoiseReproducesTheGaussianData) {
  for (double a : {0.3, 0.7, 1.0}) EXPECT_LT(gaussian_error(kBlock, a, 4), 1.0) << "block SDE a = " << a;
  // Block noise under the isotropic drift contracts the directions it does not reach.
  EXPECT_GT(gaussian_error(kBlockWrongDrift, 0.7, 4), 1.0);
}

TEST(FlowMarginals, AWrongDriftFailsTheCheck) {
  // The same checks must be able to fail: a drift with the wrong correction term does.
  EXPECT_GT(gaussian_error(kWrongDrift, 0.7), 1.0);
  EXPECT_GT(mixture_error(kWrongDrift, 0.7), 1.0);
}

// ---- the ODE solvers against closed forms ----
namespace {
// Integrates the exact field of `target` from noise `e` with `steps` solver steps.
torch::Tensor solve(const Mixture& target, const torch::Tensor& e, int steps, flow::OdeSolver solver) {
  const auto sig = flow::shifted_sigmas(steps, 3.0);
  flow::OdeIntegrator ode(solver);
  auto x = e.clone();
  for (int i = 0; i < steps; ++i) x = ode.step(x, target.velocity(x, sig[i]), sig[i], sig[i + 1]);
  return x;
}
}  // namespace

TEST(OdeSolver, EulerIsTheEulerStepBitForBit) {
  torch::manual_seed(3);
  const auto x = torch::randn({4, 3, 8, 8}), v = torch::randn({4, 3, 8, 8});
  flow::OdeIntegrator euler(flow::OdeSolver::euler), dpm(flow::OdeSolver::dpm2m);
  const auto want = flow::ode_step(x, v, {1.0, 0.9, 0.9});
  EXPECT_TRUE(torch::equal(euler.step(x, v, 1.0, 0.9), want));
  // DPM-Solver++(2M)'s first step (and any step from sigma = 1 or to 0) is the Euler step.
  EXPECT_TRUE(torch::equal(dpm.step(x, v, 1.0, 0.9), want));
  EXPECT_TRUE(torch::equal(dpm.step(x, v, 0.9, 0.8), flow::ode_step(x, v, {0.9, 0.8, 0.9})));
  EXPECT_FALSE(torch::equal(dpm.step(x, v, 0.8, 0.5), flow::ode_step(x, v, {0.8, 0.5, 0.9})));
  EXPECT_TRUE(torch::equal(dpm.step(x, v, 0.5, 0.0), flow::ode_step(x, v, {0.5, 0.0, 0.9})));
  EXPECT_THROW(dpm.step(x, v, 0.5, 0.6), std::invalid_argument);
}

TEST(OdeSolver, Dpm2mIsSecondOrderOnTheGaussianFlowMap) {
  // For Gaussian data N(m, c^2) the ODE carries noise e to m + c e exactly (the flow map is affine).
  Mixture g{{1.0}, {0.6}, {torch::tensor({1.5, -0.5}, torch::kDouble)}};
  torch::manual_seed(5);
  const auto e = torch::randn({512, 2}, torch::kDouble);
  const auto exact = g.m[0] + 0.6 * e;
  auto error = [&](int steps, flow::OdeSolver s) { return (solve(g, e, steps, s) - exact).abs().max().item<double>(); };
  // (Below about 16 steps of the shift-3 schedule the last step, first order for both, dominates.)
  for (int steps : {16, 32}) {
    EXPECT_LT(error(steps, flow::OdeSolver::dpm2m), 0.5 * error(steps, flow::OdeSolver::euler)) << steps;
  }
  // Halving the step size cuts Euler's error about 2x and DPM-Solver++(2M)'s about 4x.
  const double euler_ratio = error(16, flow::OdeSolver::euler) / error(32, flow::OdeSolver::euler);
  const double dpm_ratio = error(16, flow::OdeSolver::dpm2m) / error(32, flow::OdeSolver::dpm2m);
  EXPECT_NEAR(euler_ratio, 2.0, 0.4);
  EXPECT_GT(dpm_ratio, 3.2);
}

TEST(OdeSolver, Dpm2mAtHalfTheStepsMatchesEulerOnAMixture) {
  // A bimodal field (not affine): the reference is Euler with 4000 steps.
  Mixture g{{0.3, 0.7}, {0.4, 0.5}, {torch::tensor({-2.0}, torch::kDouble), torch::tensor({2.0}, torch::kDouble)}};
  torch::manual_seed(7);
  const auto e = torch::randn({2048, 1}, torch::kDouble);
  const auto reference = solve(g, e, 4000, flow::OdeSolver::euler);
  auto error = [&](int steps, flow::OdeSolver s) { return (solve(g, e, steps, s) - reference).abs().mean().item<double>(); };
  // Measured (float64): Euler 0.082 / 0.043 / 0.035 at 16 / 32 / 40 steps, DPM-Solver++(2M) 0.046 / 0.025 at
  // 16 / 20. At 10 steps the two are close (0.124 / 0.108): the first-order first and last steps dominate.
  EXPECT_LT(error(16, flow::OdeSolver::dpm2m), 0.7 * error(16, flow::OdeSolver::euler));
  EXPECT_LT(error(20, flow::OdeSolver::dpm2m), error(40, flow::OdeSolver::euler));
}

TEST(OdeSolver, VisitsEndOnTheSegmentsLastStep) {
  EXPECT_EQ(flow::ode_visits(0, 6, 1), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(flow::ode_visits(4, 10, 2), (std::vector<std::int64_t>{4, 6, 8}));
  EXPECT_EQ(flow::ode_visits(4, 10, 4), (std::vector<std::int64_t>{4, 8}));
  EXPECT_TRUE(flow::ode_visits(3, 3, 2).empty());
  EXPECT_EQ(flow::ode_evaluations(4, 10, 4), 2);
  EXPECT_EQ(flow::ode_evaluations(3, 3, 2), 0);
  EXPECT_THROW(flow::ode_visits(0, 4, 0), std::invalid_argument);
  EXPECT_THROW(flow::ode_visits(5, 4, 1), std::invalid_argument);
}
