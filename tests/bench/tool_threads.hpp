// tool_threads.hpp -- benchmarks run under the tools' own thread plan for 2 threads: pools that
// sleep when idle (the re-executed environment, as a tool sets it up) and the split apply_threads
// chooses, so that their figures are what the tools run.
#pragma once
#include <benchmark/benchmark.h>

#include "runtime/runtime.hpp"

namespace treerpo::bench {

/// The plan of a tool given --threads 2 (set up by tool_main_with_threads).
inline runtime::ThreadPlan& tool_plan() {
  static runtime::ThreadPlan plan;
  return plan;
}

/// Back to the tools' split (a benchmark comparing splits changes it).
inline void use_tool_threads() { runtime::set_thread_split(tool_plan().blas, tool_plan().torch); }

/// main() of a benchmark program: the tools' environment (may re-execute), their plan, then Google Benchmark.
inline int tool_main_with_threads(int argc, char** argv) {
  runtime::sleep_idle_pools(2, argv);
  tool_plan() = runtime::apply_threads(2);
  runtime::keep_freed_memory();  // as every tool does
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("threads", "OpenBLAS " + std::to_string(tool_plan().blas) + ", libtorch " +
                                             std::to_string(tool_plan().torch) +
                                             (runtime::pools_sleep_when_idle() ? " (pools sleep when idle)" : " (pools spin)"));
  benchmark::AddCustomContext("blas", runtime::blas_description());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace treerpo::bench
