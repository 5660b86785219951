// bench_model.cpp -- throughput of the default built-in model: forward and forward+backward
// samples/s at batch 1..256, achieved GFLOP/s against the OpenBLAS matrix-product ceiling
// measured in the same run, and the four ways to split 2 threads between OpenBLAS and
// libtorch. Run by hand: build/bin/treerpo_bench_model --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "model/builtin_dit.hpp"
#include "runtime/runtime.hpp"
#include "tool_threads.hpp"

using namespace treerpo;

namespace {
model::BuiltinPolicy& policy() {
  static model::BuiltinPolicy p(bench::model_config(), model::Tokenizer(model::Tokenizer::default_words()), 1);
  static bool trained = [] {
    // Move the zero-initialised output layers off zero so the work is representative.
    torch::NoGradGuard g;
    for (auto& [name, t] : p.named_parameters()) t.add_(torch::randn_like(t) * 0.01);
    return true;
  }();
  (void)trained;
  return p;
}

struct Batch {
  torch::Tensor x, sigma;
  model::Conditioning c;
};

Batch make_batch(std::int64_t b) {
  torch::manual_seed(0);
  std::vector<std::string> prompts(static_cast<std::size_t>(b), "two red circles left of a blue square");
  return {torch::randn({b, 3, 32, 32}), torch::rand({b}), policy().encode(prompts)};
}

// `passes`: 1 for a forward pass, 3 for forward + backward (the usual 2x for the backward).
void report(benchmark::State& state, std::int64_t batch, double passes) {
  const double flops = passes * bench::model_config().flops_per_sample();
  state.counters["samples/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch) * flops * 1e-9,
                                                 benchmark::Counter::kIsRate);
}

// One untimed pass first: a batch's first pass grows the heap (page faults), which a run of
// one or two timed iterations (the large batches) would otherwise count as model time.
void training_pass(const Batch& b) {
  auto loss = policy().velocity(b.x, b.sigma, b.c).pow(2).mean();
  loss.backward();
  for (auto& p : policy().trainable_parameters()) p.mutable_grad().reset();
}

void BM_Forward(benchmark::State& state) {
  bench::use_tool_threads();
  const auto b = make_batch(state.range(0));
  torch::NoGradGuard guard;
  policy().velocity(b.x, b.sigma, b.c);  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(policy().velocity(b.x, b.sigma, b.c).data_ptr());
  report(state, state.range(0), 1);
}

void BM_ForwardBackward(benchmark::State& state) {
  bench::use_tool_threads();
  const auto b = make_batch(state.range(0));
  policy().set_trainable(".*");
  training_pass(b);  // warm-up
  for (auto _ : state) training_pass(b);
  report(state, state.range(0), 3);
}

// Forward+backward at batch 64 under each (OpenBLAS, libtorch) thread split.
void BM_ThreadSplit(benchmark::State& state) {
  runtime::set_thread_split(static_cast<unsigned>(state.range(0)), static_cast<unsigned>(state.range(1)));
  const auto b = make_batch(64);
  policy().set_trainable(".*");
  training_pass(b);  // warm-up
  for (auto _ : state) training_pass(b);
  state.SetLabel("blas " + std::to_string(state.range(0)) + " / torch " + std::to_string(state.range(1)));
  report(state, 64, 3);
  bench::use_tool_threads();
}

// The ceiling: square float32 matrix products through libtorch (OpenBLAS).
void BM_MatmulCeiling(benchmark::State& state) {
  bench::use_tool_threads();
  const auto n = state.range(0);
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  for (auto _ : state) benchmark::DoNotOptimize(torch::mm(a, b).data_ptr());
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * double(n) * double(n) * double(n) * 1e-9,
                                                 benchmark::Counter::kIsRate);
}
}  // namespace

BENCHMARK(BM_MatmulCeiling)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Forward)->RangeMultiplier(4)->Range(1, 256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ForwardBackward)->RangeMultiplier(4)->Range(1, 256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ThreadSplit)->Args({1, 1})->Args({1, 2})->Args({2, 1})->Args({2, 2})->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  bench::parse_model_flags(argc, argv);
  benchmark::AddCustomContext("params", std::to_string(policy().parameter_count()));
  benchmark::AddCustomContext("flops_per_sample", std::to_string(bench::model_config().flops_per_sample()));
  return bench::tool_main_with_threads(argc, argv);
}
