// bench_io.cpp -- write and read throughput of trajectory files: zstd (default level) vs
// uncompressed, and a named file vs a pipe (stdout / stdin). Run by hand:
//   build/bin/treerpo_bench_io --benchmark_min_time=1
// Throughput counts the bytes of node and leaf latents (the bulk of a file).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "format/trajectory_io.hpp"
#include "h5/handle.hpp"
#include "h5/io.hpp"
#include "h5/zstd_filter.hpp"
#include "tools/synth.hpp"

using namespace treerpo;

namespace {
const format::Trajectory& sample(std::size_t prompts) {
  static std::map<std::size_t, format::Trajectory> cache;
  auto it = cache.find(prompts);
  if (it != cache.end()) return it->second;
  tools::SynthOptions o;  // default tree: 31 nodes + 16 leaves of 3x32x32 float32 per prompt
  std::vector<std::string> texts(prompts, "a red circle left of a blue square");
  return cache[prompts] = tools::synthesize(o, texts, {0, prompts}, 1);
}

std::int64_t latent_bytes(const format::Trajectory& t) {
  return static_cast<std::int64_t>((t.nodes.latent.data.size() + t.leaves.latent.data.size()) * sizeof(float));
}

std::string temp_path() { return std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/treerpo-bench.h5"; }

// Redirects fd (0 or 1) to one end of a pipe whose other end a thread drains or fills.
class PipeRedirect {
 public:
  PipeRedirect(int fd, const std::vector<char>* feed) : fd_(fd) {
    int p[2];
    if (pipe(p) != 0) std::abort();
    saved_ = dup(fd);
    if (fd == STDOUT_FILENO) {
      dup2(p[1], fd); close(p[1]);
      thread_ = std::thread([r = p[0]] { char buf[1 << 16]; while (read(r, buf, sizeof buf) > 0) {} close(r); });
    } else {
      dup2(p[0], fd); close(p[0]);
      thread_ = std::thread([w = p[1], feed] {
        std::size_t off = 0;
        while (off < feed->size()) { auto n = write(w, feed->data() + off, feed->size() - off); if (n <= 0) break; off += static_cast<std::size_t>(n); }
        close(w);
      });
    }
  }
  ~PipeRedirect() {
    if (fd_ == STDOUT_FILENO) { dup2(saved_, fd_); }  // closes the pipe's write end: reader ends
    thread_.join();
    if (fd_ == STDIN_FILENO) dup2(saved_, fd_);
    close(saved_);
  }

 private:
  int fd_, saved_;
  std::thread thread_;
};

void BM_Write(benchmark::State& state) {
  const auto& t = sample(static_cast<std::size_t>(state.range(0)));
  const int level = static_cast<int>(state.range(1));
  const bool to_pipe = state.range(2) == 1;
  const std::string path = temp_path();
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::unique_ptr<PipeRedirect> redirect;
    if (to_pipe) redirect = std::make_unique<PipeRedirect>(STDOUT_FILENO, nullptr);
    h5::OutputFile out(to_pipe ? "-" : path, /*force=*/true, "bench");
    format::write_trajectory(out.id(), t, format::WriteOptions{level});
    out.commit();
    bytes = out.bytes();
  }
  state.SetBytesProcessed(state.iterations() * latent_bytes(t));
  state.counters["file_MB"] = static_cast<double>(bytes) / 1e6;
  state.SetLabel(std::string(level ? "zstd" : "uncompressed") + (to_pipe ? ", pipe" : ", file"));
  unlink(path.c_str());
}

void BM_Read(benchmark::State& state) {
  const auto& t = sample(static_cast<std::size_t>(state.range(0)));
  const int level = static_cast<int>(state.range(1));
  const bool from_pipe = state.range(2) == 1;
  const std::string path = temp_path();
  {
    h5::OutputFile out(path, true, "bench");
    format::write_trajectory(out.id(), t, format::WriteOptions{level});
    out.commit();
  }
  std::ifstream f(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (auto _ : state) {
    std::unique_ptr<PipeRedirect> redirect;
    if (from_pipe) redirect = std::make_unique<PipeRedirect>(STDIN_FILENO, &bytes);
    auto in = h5::open_input(from_pipe ? "-" : path);
    auto back = format::read_trajectory(in.file.get(), in.name);
    benchmark::DoNotOptimize(back.nodes.latent.data.data());
  }
  state.SetBytesProcessed(state.iterations() * latent_bytes(t));
  state.SetLabel(std::string(level ? "zstd" : "uncompressed") + (from_pipe ? ", pipe" : ", file"));
  unlink(path.c_str());
}

// Args: prompts, zstd level (0 = none, 3 = default), 0 = file / 1 = pipe.
void io_args(benchmark::internal::Benchmark* b) {
  for (int prompts : {16, 64})
    for (int level : {0, 3})
      for (int pipe : {0, 1}) b->Args({prompts, level, pipe});
}
}  // namespace

BENCHMARK(BM_Write)->Apply(io_args)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Read)->Apply(io_args)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  h5::silence_errors();
  h5::register_zstd_filter();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
