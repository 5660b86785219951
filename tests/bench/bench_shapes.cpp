// bench_shapes.cpp -- images/s of the shapes world's renderer and rewards (32x32 default).
// Run by hand: build/bin/treerpo_bench_shapes
#include <benchmark/benchmark.h>

#include <map>

#include "shapes/dataset.hpp"
#include "shapes/reward.hpp"

using namespace treerpo::shapes;

namespace {
const std::vector<Sample>& samples(int size) {
  static std::map<int, std::vector<Sample>> cache;
  auto& s = cache[size];
  if (s.empty()) s = make_samples(Split::train, 240, size, 1);
  return s;
}

void BM_Render(benchmark::State& state) {
  const auto all = all_prompts();
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& spec = all[i++ % all.size()];
    benchmark::DoNotOptimize(render(layout(spec, static_cast<int>(state.range(0)), i), static_cast<int>(state.range(0)), i).rgb.data());
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_ShapesReward(benchmark::State& state) {
  const auto& s = samples(static_cast<int>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& x = s[i++ % s.size()];
    benchmark::DoNotOptimize(score_shapes(x.text, x.image).strict);
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_ContinuousRewards(benchmark::State& state) {
  const auto& s = samples(32);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& img = s[i++ % s.size()].image;
    benchmark::DoNotOptimize(compressibility(img) + brightness(img) + saturation(img));
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
}  // namespace

BENCHMARK(BM_Render)->Arg(32)->Arg(64);
BENCHMARK(BM_ShapesReward)->Arg(32)->Arg(64);
BENCHMARK(BM_ContinuousRewards);
BENCHMARK_MAIN();
