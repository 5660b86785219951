// runtime.hpp -- process-wide compute settings: threads (libtorch + BLAS, set once) and
// the facts --version reports (libtorch, HDF5, BLAS in use). Keeps torch out of callers' headers.
#pragma once
#include <string>

namespace treerpo::runtime {

/// CPUs this process may run on (its affinity mask: respects Slurm/cgroup binding).
unsigned cpus_allowed();

/// Keeps freed memory in the process heap instead of returning large blocks to the system after
/// every tensor (glibc mallopt): large batches otherwise page-fault their activations on every
/// forward pass. Peak memory is then held until exit. Call once, early.
void keep_freed_memory();

/// Resolves --threads (0 = cpus_allowed()).
unsigned resolve_threads(unsigned requested);

/// How the thread budget was divided between the two pools.
struct ThreadPlan {
  unsigned total = 1;
  unsigned blas = 1;   ///< OpenBLAS pool (matrix products)
  unsigned torch = 1;  ///< libtorch intra-op pool (elementwise ops)
};

/// True when both pools sleep as soon as they are idle: libtorch's OpenMP pool under
/// OMP_WAIT_POLICY=passive and OpenBLAS's under an OPENBLAS_THREAD_TIMEOUT of at most 8 (2^8
/// cycles of spinning). Both libraries read these once, when they load.
bool pools_sleep_when_idle();

/// For a budget of more than one thread: when neither variable is set, sets both (passive,
/// timeout 4) and re-executes this program with the same arguments, so that both pools can use
/// every core (measured in README: forward 1.2-1.4x, forward+backward 1.2x on 2 cores). Returns
/// when nothing was done: one thread, the user set either variable, or this is the re-executed
/// process (TREERPO_REEXEC is set), or exec failed (the spinning split is then kept).
void sleep_idle_pools(unsigned total, char** argv);

/// Applies a budget of `total` threads exactly once per process. OpenBLAS gets all of them; so
/// does libtorch's intra-op pool when the pools sleep when idle, and otherwise one, so that two
/// spinning pools never oversubscribe the cores (PERFORMANCE.md: with spinning pools BLAS 2 /
/// torch 1 was fastest on 2 cores and 2 / 2 halved throughput).
ThreadPlan apply_threads(unsigned total);

/// Sets the two pools directly (benchmarks comparing splits; tools use apply_threads).
void set_thread_split(unsigned blas, unsigned torch);

/// The BLAS that libtorch's matrix products resolve to, e.g. "OpenBLAS 0.3.21 ... (2 threads)"
/// or "reference BLAS (slow: install libopenblas0-pthread)".
std::string blas_description();
/// True when an optimised BLAS (OpenBLAS) is the one in use.
bool blas_is_optimised();

/// Resolves --device: "auto" -> cuda when available, else cpu. \throws UsageError when CUDA
/// is requested but this build or machine has none.
std::string resolve_device(const std::string& requested);

/// Translates a libtorch exception: device out-of-memory -> temp_failure (75, retryable), any
/// other c10::Error -> software (70), with its message cut to one line (no C++ backtrace).
/// Returns false for exceptions that are not libtorch's.
bool translate_torch_error(const std::exception& e, int* exit_code, std::string* message);

std::string torch_version();
std::string hdf5_version();
/// Multi-line build and runtime report for --version (and -v start-up).
std::string version_report(const std::string& tool, bool verbose);

}  // namespace treerpo::runtime
