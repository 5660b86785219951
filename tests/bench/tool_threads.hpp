// tool_threads.hpp -- benchmarks run under the tools' own thread plan for 2 threads: pools that
// sleep when idle (the re-executed environment, as a tool sets it up) and the split apply_threads
// chooses, so that their figures are what the tools run.
#pragma once
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "model/builtin_dit.hpp"
#include "runtime/runtime.hpp"

namespace treerpo::bench {

/// The plan of a tool given --threads 2 (set up by tool_main_with_threads).
inline runtime::ThreadPlan& tool_plan() {
  static runtime::ThreadPlan plan;
  return plan;
}

/// Back to the tools' split (a benchmark comparing splits changes it).
inline void use_tool_threads() { runtime::set_thread_split(tool_plan().blas, tool_plan().torch); }

/// The built-in model the benchmarks run: the default configuration, with `--depth=N` on the
/// command line for another depth (the shipped base model is depth 8). Google Benchmark leaves
/// flags it does not know alone, so the flag also survives the re-execution.
inline model::DitConfig& model_config() {
  static model::DitConfig config;
  return config;
}

/// Reads `--depth=N`; call first in main(), before anything builds the model.
inline void parse_model_flags(int argc, char** argv) {
  const std::string flag = "--depth=";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind(flag, 0) == 0) model_config().depth = std::atoi(arg.c_str() + flag.size());
  }
  if (model_config().depth < 1) throw std::invalid_argument("--depth must be a positive integer");
}

/// main() of a benchmark program: the tools' environment (may re-execute), their plan, then Google Benchmark.
inline int tool_main_with_threads(int argc, char** argv) {
  parse_model_flags(argc, argv);
  runtime::sleep_idle_pools(2, argv);
  tool_plan() = runtime::apply_threads(2);
  runtime::keep_freed_memory();  // as every tool does
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("threads", "OpenBLAS " + std::to_string(tool_plan().blas) + ", libtorch " +
                                             std::to_string(tool_plan().torch) +
                                             (runtime::pools_sleep_when_idle() ? " (pools sleep when idle)" : " (pools spin)"));
  benchmark::AddCustomContext("blas", runtime::blas_description());
  benchmark::AddCustomContext("model_depth", std::to_string(model_config().depth));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace treerpo::bench
