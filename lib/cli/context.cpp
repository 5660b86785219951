// context.cpp -- shards, provenance records and progress lines.
#include "cli/context.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "runtime/runtime.hpp"
#include "core/git_revision.hpp"
#include "treerpo/build_info.hpp"

namespace treerpo::cli {

std::pair<std::size_t, std::size_t> Shard::range(std::size_t items) const {
  const std::size_t begin = items * index / count;
  const std::size_t end = items * (index + 1) / count;
  return {begin, end};
}

Shard parse_shard(const std::string& text, const std::string& option) {
  const auto slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    std::size_t used = 0;
    const long i = std::stol(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("trailing");
    const std::string rest = text.substr(slash + 1);
    const long n = std::stol(rest, &used);
    if (used != rest.size()) throw std::invalid_argument("trailing");
    if (n < 1 || i < 0 || i >= n) throw std::invalid_argument("range");
    return Shard{static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(n)};
  } catch (const std::logic_error&) {
    throw UsageError(option + ": expected i/n with 0 <= i < n, got '" + text + "'");
  }
}

std::optional<Shard> shard_from_slurm() {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return std::nullopt;
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  const long first = min ? std::atol(min) : 0;
  return parse_shard(std::to_string(std::atol(id) - first) + "/" + count,
                     "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT");
}

void Context::adopt_seed(std::uint64_t from_input, const std::string& source) {
  seed = from_input;
  log::info("seed: " + std::to_string(seed) + " (" + source + ")");
}

std::uint64_t random_seed() { return (std::uint64_t(std::random_device{}()) << 32) ^ std::random_device{}(); }

std::string Context::provenance_record(const std::vector<InputRecord>& inputs, const std::string& timings_json) const {
  nlohmann::ordered_json r;
  r["tool"] = tool;
  r["version"] = build::kVersion;
  r["git_revision"] = build::git_revision();
  r["argv"] = argv;
  r["options"] = resolved_options;
  r["seed"] = std::to_string(seed);
  r["threads"] = threads;
  r["device"] = device;
  r["libraries"] = {{"libtorch", runtime::torch_version()},
                    {"hdf5", runtime::hdf5_version()},
                    {"blas", runtime::blas_description()}};
  auto& in = r["inputs"] = nlohmann::ordered_json::array();
  for (const auto& i : inputs) in.push_back({{"path", i.path}, {"digest", i.digest}});
  // SOURCE_DATE_EPOCH (the reproducible-builds convention) fixes the time and drops timings,
  // so that reruns are byte-identical.
  const char* epoch = std::getenv("SOURCE_DATE_EPOCH");
  const std::time_t now = epoch ? static_cast<std::time_t>(std::atoll(epoch)) : std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  r["time"] = buf;
  r["timings"] = epoch ? nlohmann::ordered_json::object() : nlohmann::ordered_json::parse(timings_json, nullptr, false);
  if (!health.empty()) r["health"] = health;
  return r.dump();
}

void check_stdout_free(const Context& ctx, const std::string& output) {
  if (ctx.json && output == "-")
    throw UsageError("--json and -o - both want stdout; write the data to a file with -o FILE");
}

namespace {
double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Progress::Progress(const Context& ctx, std::string label, std::uint64_t total)
    : enabled_(ctx.progress), tty_(ctx.progress_tty), label_(std::move(label)), total_(total) {}

Progress::~Progress() { finish(); }

void Progress::update(std::uint64_t done) {
  if (!enabled_) return;
  const double t = now_seconds();
  if (t - last_ < (tty_ ? 0.1 : 10.0) && done < total_) return;
  last_ = t;
  const double pct = total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0;
  std::fprintf(stderr, tty_ ? "\r%s %llu/%llu (%.0f%%)" : "%s %llu/%llu (%.0f%%)\n", label_.c_str(),
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_), pct);
  std::fflush(stderr);
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (tty_) { std::fputc('\n', stderr); std::fflush(stderr); }
}

}  // namespace treerpo::cli
