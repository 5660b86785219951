// bench_update.cpp -- update's RL objective on the default built-in model: trainable edges per
// second over one pass of a 16-prompt tree rollout (480 edges), against the model's own
// forward + backward passes on the same batch shapes, replayed in the same run:
// model_fraction = replay time / update time (goal >= 0.80). Run by hand:
//   build/bin/treerpo_bench_update   (args: objective 0 grpo / 1 layertuning, minibatch, guidance)
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>

#include "advantage/edge_advantages.hpp"
#include "core/rng.hpp"
#include "flow/schedule.hpp"
#include "model/builtin_dit.hpp"
#include "rollout/tree_sampler.hpp"
#include "recording_policy.hpp"
#include "runtime/runtime.hpp"
#include "tool_threads.hpp"
#include "training/grpo.hpp"

using namespace treerpo;

namespace {
using bench::RecordingPolicy;

std::unique_ptr<model::BuiltinPolicy> fresh_base() {
  auto p = std::make_unique<model::BuiltinPolicy>(bench::model_config(), model::Tokenizer(model::Tokenizer::default_words()), 1);
  torch::NoGradGuard g;  // off the zero-initialised output layers, so the work is representative
  torch::manual_seed(1);
  for (auto& [name, t] : p->named_parameters()) t.add_(torch::randn_like(t) * 0.01);
  return p;
}

// A 16-prompt default tree (T = 10, binary depth 4) with keyed random rewards and tree advantages.
format::Trajectory scored_tree(model::Policy& policy, double guidance) {
  rollout::SamplerConfig c;
  c.sigmas = flow::shifted_sigmas(10, 3.0);
  c.branching = {2, 2, 2, 2};
  c.noise_levels = rollout::dynamic_noise(0.7, 0.5, 4);
  c.guidance = guidance;
  c.seed = 1;
  format::Trajectory t;
  for (std::int64_t i = 0; i < 16; ++i) {
    t.prompts.text.push_back(i % 2 ? "two red circles left of a blue square" : "three green triangles");
    t.prompts.id.push_back(i);
  }
  rollout::sample_tree(policy, policy.encode(t.prompts.text), t.prompts.id, 0, c, t);
  t.rollout.sigmas = c.sigmas;
  t.rollout.branching = c.branching;
  t.rollout.depth = 4;
  t.rollout.noise_levels = c.noise_levels;
  t.rollout.latent_shape = {3, 32, 32};
  t.rollout.settings = "{\"guidance\": " + std::to_string(guidance) + "}";
  t.rollout.guidance = guidance;
  format::Reward r;
  r.name = "random";
  rng::NormalStream s(rng::derive_key(1, rng::Domain::synthetic, {}));
  for (std::size_t g = 0; g < t.leaves.size(); ++g) r.values.push_back(static_cast<float>(s.next()));
  t.rewards.push_back(r);
  advantage::Forest f{t.nodes.parent, t.nodes.prompt, t.nodes.depth, t.leaves.node, 16};
  const auto a = advantage::compute(f, {{"random", 1.0, std::vector<double>(r.values.begin(), r.values.end())}}, {});
  t.advantages = format::Advantages{"tree", "{}", std::vector<float>(a.edge.begin(), a.edge.end())};
  return t;
}

void BM_Update(benchmark::State& state) {
  runtime::keep_freed_memory();  // as every tool does
  bench::use_tool_threads();
  const bool layertuning = state.range(0) == 1;
  const auto minibatch = state.range(1);
  const double guidance = static_cast<double>(state.range(2));
  auto sampler = fresh_base();
  const auto t = scored_tree(*sampler, guidance);
  training::RlConfig c;
  c.objective = layertuning ? training::RlObjective::layertuning : training::RlObjective::grpo;
  c.minibatch = minibatch;
  training::Communicator single(training::LaunchInfo{}, std::chrono::seconds(1));
  double update_seconds = 1e300, replay_seconds = 1e300;
  std::int64_t edges = 0;
  for (auto _ : state) {
    auto trained = fresh_base();  // the weights the rollout came from: ratio 1 at the start
    RecordingPolicy policy(*trained, /*with_grad_only=*/true);
    const auto start = std::chrono::steady_clock::now();
    const auto r = training::train_rl(policy, nullptr, {{"bench", &t}}, nullptr, c, {}, 0, single, nullptr, nullptr);
    update_seconds = std::min(update_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    edges = static_cast<std::int64_t>(training::trainable_edges({{"bench", &t}}).size());
    benchmark::DoNotOptimize(r.state.step);
    // The model alone, forward + backward, on the same batch shapes (random states).
    const auto cond = trained->encode(t.prompts.text);
    std::vector<torch::Tensor> inputs;
    for (auto b : policy.batches) inputs.push_back(torch::randn({b, 3, 32, 32}));
    const auto start_replay = std::chrono::steady_clock::now();
    for (const auto& x : inputs) {
      const auto v = trained->velocity(x, torch::full({x.size(0)}, 0.5), cond.index_select(torch::arange(x.size(0)) % 16));
      v.pow(2).mean().backward();
    }
    replay_seconds = std::min(replay_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_replay).count());
    std::int64_t rows = 0;
    for (auto b : policy.batches) rows += b;
    state.counters["model_rows_per_edge"] = static_cast<double>(rows) / static_cast<double>(edges);
  }
  state.counters["edges"] = static_cast<double>(edges);
  state.counters["edges/s"] = static_cast<double>(edges) / update_seconds;
  state.counters["fwd_bwd_rows/s"] = state.counters["model_rows_per_edge"] * static_cast<double>(edges) / replay_seconds;
  state.counters["model_fraction"] = replay_seconds / update_seconds;
  state.SetLabel(std::string(layertuning ? "layertuning" : "grpo") + " minibatch " + std::to_string(minibatch) +
                 " guidance " + std::to_string(static_cast<int>(guidance)));
}
}  // namespace

// Args: objective (0 grpo, 1 layertuning), edges per minibatch, guidance.
BENCHMARK(BM_Update)->Args({0, 64, 1})->Args({1, 64, 1})->Args({0, 64, 3})->Args({0, 32, 1})->Iterations(2)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Update)->Name("BM_UpdateSmoke")->Args({0, 480, 1})->Iterations(1)->Unit(benchmark::kMillisecond);
int main(int argc, char** argv) { return bench::tool_main_with_threads(argc, argv); }
