// bench_rollout.cpp -- tree-rollout's sampler on the default built-in model: wall time per
// rollout of 16 prompts x 16 leaves in each mode (tree, window, independent), its NFE, the bytes
// of the file it makes, and how much of the wall time is model forward passes: the same
// sequence of batch shapes is replayed through the model alone in the same run, and
// model_fraction = replay time / rollout time (goal >= 0.85). Run by hand:
//   build/bin/treerpo_bench_rollout   (two rollouts and two replays per mode; the fastest of each)
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <unistd.h>

#include "flow/schedule.hpp"
#include "format/trajectory_io.hpp"
#include "h5/io.hpp"
#include "model/builtin_dit.hpp"
#include "rollout/tree_sampler.hpp"
#include "recording_policy.hpp"
#include "runtime/runtime.hpp"
#include "tool_threads.hpp"

using namespace treerpo;

namespace {
using bench::RecordingPolicy;

model::BuiltinPolicy& base() {
  static model::BuiltinPolicy p(bench::model_config(), model::Tokenizer(model::Tokenizer::default_words()), 1);
  static bool moved = [] {
    torch::NoGradGuard g;  // off the zero-initialised output layers, so the work is representative
    for (auto& [name, t] : p.named_parameters()) t.add_(torch::randn_like(t) * 0.01);
    return true;
  }();
  (void)moved;
  return p;
}

rollout::SamplerConfig mode_config(int mode) {
  rollout::SamplerConfig c;
  c.sigmas = flow::shifted_sigmas(10, 3.0);
  if (mode == 0) {  // tree: binary depth 4 at l = 0
    c.branching = {2, 2, 2, 2};
    c.noise_levels = rollout::dynamic_noise(0.7, 0.5, 4);
  } else if (mode == 1) {  // window: 16 trajectories, SDE in the same window
    c.branching = {1, 1, 1, 1};
    c.noise_levels = rollout::dynamic_noise(0.7, 0.0, 4);
    c.roots = 16;
  } else {  // independent: 16 trajectories, SDE at every step
    c.branching = std::vector<std::int64_t>(10, 1);
    c.noise_levels = rollout::dynamic_noise(0.7, 0.0, 10);
    c.roots = 16;
  }
  c.seed = 1;
  return c;
}

void BM_Rollout(benchmark::State& state) {
  runtime::keep_freed_memory();  // as every tool does
  bench::use_tool_threads();
  const int mode = static_cast<int>(state.range(0));
  const auto prompts = state.range(1);
  const auto config = mode_config(mode);
  std::vector<std::string> texts;
  std::vector<std::int64_t> ids;
  for (std::int64_t i = 0; i < prompts; ++i) {
    texts.push_back(i % 2 ? "two red circles left of a blue square" : "three green triangles");
    ids.push_back(i);
  }
  RecordingPolicy policy(base());
  const auto cond = policy.encode(texts);
  format::Trajectory t;
  double rollout_seconds = 1e300;  // the fastest iteration: the machine is shared and noisy
  for (auto _ : state) {
    t = format::Trajectory{};
    policy.batches.clear();
    const auto start = std::chrono::steady_clock::now();
    rollout::sample_tree(policy, cond, ids, 0, config, t);
    rollout_seconds = std::min(rollout_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  // After the timed loop: the model alone on the same batch shapes (random states, same prompts).
  double replay_seconds = 1e300;
  for (int repeat = 0; repeat < 2; ++repeat) {  // the faster of two replays
    torch::NoGradGuard g;
    std::vector<torch::Tensor> inputs;
    std::vector<model::Conditioning> conds;
    for (auto b : policy.batches) {
      inputs.push_back(torch::randn({b, 3, 32, 32}));
      conds.push_back(cond.index_select(torch::arange(b) % prompts));
    }
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < inputs.size(); ++i)
      benchmark::DoNotOptimize(base().velocity(inputs[i], torch::full({inputs[i].size(0)}, 0.5), conds[i]).data_ptr());
    replay_seconds = std::min(replay_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  // File size of one rollout (zstd level 3, as tree-rollout writes by default).
  t.prompts.text = texts;
  t.prompts.id = ids;
  t.rollout.steps = 10;
  t.rollout.sigmas = config.sigmas;
  t.rollout.depth = static_cast<std::int64_t>(config.branching.size());
  t.rollout.branching = config.branching;
  t.rollout.noise_levels = config.noise_levels;
  t.rollout.latent_shape = {3, 32, 32};
  const std::string path = "/tmp/treerpo-bench-rollout." + std::to_string(getpid()) + ".h5";
  std::size_t bytes = 0;
  {
    h5::OutputFile out(path, /*force=*/true, "bench");
    format::write_trajectory(out.id(), t, format::WriteOptions{3});
    out.commit();
    bytes = out.bytes();
  }
  std::remove(path.c_str());
  const double per_rollout = rollout_seconds;
  std::int64_t nfe = 0;
  for (auto n : t.statistics.nfe) nfe += n;
  state.counters["nfe_per_prompt"] = static_cast<double>(nfe) / static_cast<double>(prompts);
  state.counters["seconds_per_rollout"] = per_rollout;
  state.counters["model_fraction"] = replay_seconds / per_rollout;
  state.counters["file_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["leaves/s"] = benchmark::Counter(static_cast<double>(state.iterations() * prompts * 16), benchmark::Counter::kIsRate);
  state.SetLabel(mode == 0 ? "tree" : mode == 1 ? "window" : "independent");
}
}  // namespace

// Args: mode (0 tree, 1 window, 2 independent), prompts.
BENCHMARK(BM_Rollout)->Args({0, 16})->Args({1, 16})->Args({2, 16})->Iterations(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Rollout)->Name("BM_RolloutSmoke")->Args({0, 1})->Iterations(1)->Unit(benchmark::kMillisecond);
int main(int argc, char** argv) { return bench::tool_main_with_threads(argc, argv); }
