// runtime.cpp -- thread pools and library facts. The only place that sets thread counts.
#include "runtime/runtime.hpp"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>
#include <malloc.h>
#include <hdf5.h>
#include <sched.h>
#include <strings.h>
#include <unistd.h>
#include <torch/version.h>
#include <zstd.h>

#include <cstdlib>
#include <limits>
#include <sstream>

#include "core/error.hpp"
#include "core/git_revision.hpp"
#include "treerpo/build_info.hpp"

namespace treerpo::runtime {
namespace {
// OpenBLAS entry points, looked up at run time: libtorch links libblas.so.3, which the
// Debian alternatives system points at OpenBLAS or at the (30x slower) reference BLAS.
template <typename F>
F blas_symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

unsigned cpus_allowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  return 1;
}

void keep_freed_memory() {
  // glibc serves blocks above its mmap threshold (at most 32 MB) with mmap and unmaps them on
  // free, so every forward pass of a large batch faults its activations in again: measured 117
  // against 446 samples/s at batch 256 (README). Served from the heap and kept there instead.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

unsigned resolve_threads(unsigned requested) { return requested == 0 ? cpus_allowed() : requested; }

bool pools_sleep_when_idle() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* timeout = std::getenv("OPENBLAS_THREAD_TIMEOUT");
  if (!policy || !timeout || strcasecmp(policy, "passive") != 0) return false;
  char* end = nullptr;
  const long cycles_log2 = std::strtol(timeout, &end, 10);
  return end != timeout && *end == '\0' && cycles_log2 <= 8;  // OpenBLAS clamps it to >= 4
}

void sleep_idle_pools(unsigned total, char** argv) {
  if (total <= 1 || std::getenv("TREERPO_REEXEC") || std::getenv("OMP_WAIT_POLICY") ||
      std::getenv("OPENBLAS_THREAD_TIMEOUT"))
    return;
  // Both libraries read these when they load, before main: only a fresh image of the process sees them.
  setenv("OMP_WAIT_POLICY", "passive", 1);
  setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
  setenv("TREERPO_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");  // exec failed: stay as we are, with the spinning split
  unsetenv("OPENBLAS_THREAD_TIMEOUT");
}

ThreadPlan apply_threads(unsigned total) {
  static bool applied = false;
  static ThreadPlan plan;
  if (applied) return plan;  // libtorch's interop pool cannot be resized once used
  applied = true;
  plan.total = total == 0 ? 1 : total;
  plan.blas = plan.total;
  plan.torch = pools_sleep_when_idle() ? plan.total : 1;
  if (auto set_blas = blas_symbol<void (*)(int)>("openblas_set_num_threads"))
    set_blas(static_cast<int>(plan.blas));
  at::set_num_threads(static_cast<int>(plan.torch));
  at::set_num_interop_threads(1);
  return plan;
}

void set_thread_split(unsigned blas, unsigned torch) {
  if (auto set_blas = blas_symbol<void (*)(int)>("openblas_set_num_threads")) set_blas(static_cast<int>(blas));
  at::set_num_threads(static_cast<int>(torch));
}

bool blas_is_optimised() { return blas_symbol<char* (*)()>("openblas_get_config") != nullptr; }

std::string blas_description() {
  auto config = blas_symbol<char* (*)()>("openblas_get_config");
  if (!config) return "reference BLAS (slow: install libopenblas0-pthread, see README)";
  std::string out = config();
  if (out.rfind("OpenBLAS", 0) != 0) out = "OpenBLAS " + out;
  if (auto threads = blas_symbol<int (*)()>("openblas_get_num_threads"))
    out += " (" + std::to_string(threads()) + " threads)";
  return out;
}

std::string resolve_device(const std::string& requested) {
  const bool cuda = at::hasCUDA();
  if (requested == "auto") return cuda ? "cuda" : "cpu";
  if (requested == "cpu") return "cpu";
  if (requested == "cuda" || requested.rfind("cuda:", 0) == 0) {
    if (!cuda) throw UsageError("--device " + requested + ": this build of libtorch has no CUDA device available");
    return requested;
  }
  throw UsageError("--device: expected auto, cpu, cuda or cuda:N, got '" + requested + "'");
}

bool translate_torch_error(const std::exception& e, int* exit_code, std::string* message) {
  const auto* err = dynamic_cast<const c10::Error*>(&e);
  if (!err) return false;
  std::string text = err->what_without_backtrace();
  text = text.substr(0, text.find('\n'));
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) {
    *exit_code = static_cast<int>(ExitCode::temp_failure);
    *message = "out of memory on the device: " + text;
  } else {
    *exit_code = static_cast<int>(ExitCode::software);
    *message = "libtorch: " + text;
  }
  return true;
}

std::string torch_version() { return TORCH_VERSION; }

std::string hdf5_version() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
}

std::string version_report(const std::string& tool, bool verbose) {
  std::ostringstream s;
  s << tool << " (treerpo) " << build::kVersion << " (git " << build::git_revision() << ")\n";
  s << "libtorch " << torch_version() << ", HDF5 " << hdf5_version() << ", zstd " << ZSTD_versionString()
    << "\n";
  s << "BLAS: " << blas_description() << "\n";
  if (verbose) {
    s << "compiler: " << build::kCompiler << " (" << build::kBuildType << ")\n";
    const unsigned cpus = cpus_allowed();
    s << "threads: " << cpus << " CPUs allowed; --threads N gives OpenBLAS N and libtorch intra-op N with pools "
      << "that sleep when idle (OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=4, set by re-executing), "
      << "libtorch 1 when the user's environment makes them spin; this process: "
      << (pools_sleep_when_idle() ? "pools sleep" : "pools spin") << "\n";
  }
  return s.str();
}

}  // namespace treerpo::runtime
