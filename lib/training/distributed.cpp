// distributed.cpp -- c10d Gloo process groups for `update`.
#include "training/distributed.hpp"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <cstdlib>
#include <regex>

#include "core/error.hpp"

extern char** environ;

namespace treerpo::training {
namespace {
int parse_int(const std::map<std::string, std::string>& env, const std::string& name, int low) {
  const auto& text = env.at(name);
  std::size_t used = 0;
  long value = -1;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < low || value > 1 << 20)
    throw UsageError("environment variable " + name + "='" + text + "': expected an integer >= " + std::to_string(low));
  return static_cast<int>(value);
}

bool has(const std::map<std::string, std::string>& env, const std::string& name) {
  auto it = env.find(name);
  return it != env.end() && !it->second.empty();
}

std::string describe(const std::exception& e) {  // c10 messages carry a C++ backtrace after a newline
  std::string m = e.what();
  if (auto nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
  return m;
}
}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry, up to a comma outside brackets.
  std::string first;
  int depth = 0;
  for (char ch : nodelist) {
    if (ch == '[') ++depth;
    if (ch == ']') --depth;
    if (ch == ',' && depth == 0) break;
    first += ch;
  }
  const auto open = first.find('[');
  if (open == std::string::npos) return first;
  // "prefix[03-05,7]suffix": the first number of the range list keeps its zero padding.
  const auto close = first.find(']', open);
  const std::string ranges = first.substr(open + 1, close == std::string::npos ? std::string::npos : close - open - 1);
  const std::string head = ranges.substr(0, ranges.find_first_of(",-"));
  const std::string tail = close == std::string::npos ? "" : first.substr(close + 1);
  return first.substr(0, open) + head + tail;
}

LaunchInfo launch_from_environment(const std::map<std::string, std::string>& env) {
  LaunchInfo l;
  if (has(env, "WORLD_SIZE") && has(env, "RANK")) {
    l.launcher = "torchrun";
    l.world = parse_int(env, "WORLD_SIZE", 1);
    l.rank = parse_int(env, "RANK", 0);
    l.local_rank = has(env, "LOCAL_RANK") ? parse_int(env, "LOCAL_RANK", 0) : 0;
    if (l.world > 1 && !has(env, "MASTER_ADDR"))
      throw UsageError("RANK and WORLD_SIZE are set but MASTER_ADDR is not (torchrun sets all three)");
  } else if (has(env, "SLURM_NTASKS") && has(env, "SLURM_PROCID") &&
             (has(env, "SLURM_STEP_ID") || has(env, "SLURM_STEPID"))) {
    // Only inside a job step (srun): a batch script itself also sees SLURM_NTASKS, but runs once.
    l.launcher = "slurm";
    l.world = parse_int(env, "SLURM_NTASKS", 1);
    l.rank = parse_int(env, "SLURM_PROCID", 0);
    l.local_rank = has(env, "SLURM_LOCALID") ? parse_int(env, "SLURM_LOCALID", 0) : 0;
    const std::string nodes = has(env, "SLURM_STEP_NODELIST") ? env.at("SLURM_STEP_NODELIST")
                              : has(env, "SLURM_JOB_NODELIST") ? env.at("SLURM_JOB_NODELIST")
                              : has(env, "SLURM_NODELIST")     ? env.at("SLURM_NODELIST")
                                                               : "";
    if (!nodes.empty()) l.master_addr = first_slurm_host(nodes);
  } else {
    return l;
  }
  if (has(env, "MASTER_ADDR")) l.master_addr = env.at("MASTER_ADDR");
  if (has(env, "MASTER_PORT")) l.master_port = parse_int(env, "MASTER_PORT", 1);
  if (l.master_port > 65535) throw UsageError("MASTER_PORT=" + std::to_string(l.master_port) + ": not a TCP port");
  if (l.rank >= l.world)
    throw UsageError("rank " + std::to_string(l.rank) + " is outside a world of " + std::to_string(l.world) + " (" +
                     l.launcher + " environment)");
  return l;
}

LaunchInfo launch_from_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    const auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return launch_from_environment(env);
}

struct Communicator::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

Communicator::Communicator(const LaunchInfo& launch, std::chrono::seconds timeout) : launch_(launch) {
  if (launch_.world <= 1) return;
  const std::string where = launch_.master_addr + ":" + std::to_string(launch_.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(launch_.master_port);
    // Recent torchrun serves the store on MASTER_PORT itself and says so; every rank is then a client.
    const char* agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    so.isServer = launch_.rank == 0 && !(agent_store && std::string(agent_store) == "True");
    so.numWorkers = launch_.world;
    so.waitWorkers = true;
    so.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
    group_ = std::make_unique<Group>();
    group_->store = c10::make_intrusive<c10d::TCPStore>(launch_.master_addr, so);
    auto options =
        c10d::ProcessGroupGloo::Options::create(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    const char* iface = std::getenv("GLOO_SOCKET_IFNAME");
    const bool loopback = launch_.master_addr == "localhost" || launch_.master_addr.rfind("127.", 0) == 0;
    if (iface && *iface) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else if (loopback) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    // Keys of one torchrun restart attempt never meet those of an earlier attempt in a shared store.
    const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
    group_->store = c10::make_intrusive<c10d::PrefixStore>(
        std::string("treerpo/") + (restart && *restart ? restart : "0"), group_->store);
    group_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, launch_.rank, launch_.world, options);
  } catch (const std::exception& e) {
    throw ResourceError("rank " + std::to_string(launch_.rank) + " of " + std::to_string(launch_.world) +
                        ": cannot form the process group at " + where + " (" + launch_.launcher + "): " + describe(e));
  }
}

Communicator::~Communicator() = default;

void Communicator::sum(std::vector<torch::Tensor>& tensors) {
  if (!group_ || tensors.empty()) return;
  std::vector<torch::Tensor> flat_parts;
  for (const auto& t : tensors) flat_parts.push_back(t.detach().to(torch::kCPU, torch::kDouble).reshape({-1}));
  std::vector<at::Tensor> buffer{torch::cat(flat_parts)};
  try {
    group_->pg->allreduce(buffer)->wait();
  } catch (const std::exception& e) {
    throw ResourceError("rank " + std::to_string(launch_.rank) + ": a collective with the other ranks failed (a rank "
                        "died or timed out): " + describe(e));
  }
  std::int64_t offset = 0;
  for (auto& t : tensors) {
    const auto n = t.numel();
    t.copy_(buffer[0].slice(0, offset, offset + n).view(t.sizes()).to(t.device(), t.scalar_type()));
    offset += n;
  }
}

void Communicator::sum(std::vector<double>& values) {
  if (!group_ || values.empty()) return;
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kDouble)};
  sum(t);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = t[0][static_cast<std::int64_t>(i)].item<double>();
}

double Communicator::max(double value) {
  if (!group_) return value;
  std::vector<at::Tensor> buffer{torch::tensor({value}, torch::kDouble)};
  try {
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::MAX;
    group_->pg->allreduce(buffer, options)->wait();
  } catch (const std::exception& e) {
    throw ResourceError("rank " + std::to_string(launch_.rank) + ": a collective with the other ranks failed (a rank "
                        "died or timed out): " + describe(e));
  }
  return buffer[0].item<double>();
}

void Communicator::barrier() {
  if (!group_) return;
  try {
    group_->pg->barrier()->wait();
  } catch (const std::exception& e) {
    throw ResourceError("rank " + std::to_string(launch_.rank) +
                        ": a barrier with the other ranks failed: " + describe(e));
  }
}

}  // namespace treerpo::training
