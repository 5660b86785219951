// distributed.hpp -- data parallelism on PyTorch's c10d: rank and world size from torchrun's or
// Slurm's environment, a Gloo process group over TCP, and the few collectives `update` needs.
// Tensors of any device are reduced through CPU copies, so one backend serves CPU and CUDA builds.
#pragma once
#include <torch/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace treerpo::training {

/// Where this process sits in a job, as its launcher describes it.
struct LaunchInfo {
  int rank = 0;
  int world = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "none";  ///< none | torchrun | slurm
};

/// Reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT, or inside a Slurm
/// job step (srun) SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID with the address of the step's
/// first node (MASTER_ADDR and MASTER_PORT override). Without either, a single process.
/// \throws UsageError on malformed values
LaunchInfo launch_from_environment(const std::map<std::string, std::string>& env);
/// The same from the process environment.
LaunchInfo launch_from_environment();

/// The first host of a Slurm node list ("node[03-05,7],gpu1" -> "node03").
std::string first_slurm_host(const std::string& nodelist);

/// A process group of `world` ranks (world 1: no communication at all).
class Communicator {
 public:
  /// Joins the group: rank 0 serves the rendezvous store. Waits at most `timeout` for the others,
  /// and every later collective fails after `timeout` rather than hanging.
  /// \throws ResourceError (exit 75) when the group cannot form
  Communicator(const LaunchInfo& launch, std::chrono::seconds timeout);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return launch_.rank; }
  int world() const { return launch_.world; }
  const LaunchInfo& launch() const { return launch_; }

  /// Sums tensors across ranks in place (one flat buffer per call).
  /// \throws ResourceError naming the failure when a peer is gone or the timeout passes
  void sum(std::vector<torch::Tensor>& tensors);
  /// Sums doubles across ranks in place.
  void sum(std::vector<double>& values);
  /// The maximum of a double across ranks.
  double max(double value);
  void barrier();

 private:
  struct Group;
  LaunchInfo launch_;
  std::unique_ptr<Group> group_;
};

}  // namespace treerpo::training
