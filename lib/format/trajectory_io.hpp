// trajectory_io.hpp -- reading (with validation) and writing trajectory files.
#pragma once
#include <hdf5.h>

#include <optional>
#include <string>
#include <vector>

#include "format/trajectory.hpp"
#include "h5/dataset.hpp"

namespace treerpo::format {

struct WriteOptions {
  int zstd_level = 3;  ///< 0 = uncompressed (checksums stay on)
};

/// Checks the root attributes: format name and a readable version. Returns the minor version.
/// \throws DataError ("file is format 2.0; this build reads up to 1.x", "not a treerpo file")
std::int64_t check_format(hid_t file, const std::string& name, const std::string& expected = kFormatName);

/// Reads and validates the /prompts group (shared by trajectory and prompt files). \throws DataError
Prompts read_prompts(hid_t file, const std::string& name);
/// Writes the /prompts group.
void write_prompts(hid_t file, const Prompts& prompts, const WriteOptions& options);

/// Reads and validates a whole trajectory file (dtypes, shapes, invariants).
/// \throws DataError naming `name` and the dataset
Trajectory read_trajectory(hid_t file, const std::string& name);

/// Writes every known group and the root attributes into an empty, open file.
void write_trajectory(hid_t file, const Trajectory& t, const WriteOptions& options = {});

/// Which optional per-node and per-leaf datasets a file written in parts has.
struct TrajectoryLayout {
  bool velocity = false;                   ///< /nodes/velocity
  std::vector<std::uint64_t> image_shape;  ///< [H, W, 3] of one /leaves/image item; empty = none
  std::uint64_t path_steps = 0;            ///< S of /leaves/path [G, S, C, H, W]; 0 = none
};
/// The layout of a trajectory held in memory.
TrajectoryLayout layout_of(const Trajectory& t);

/// Writes a trajectory file in parts, so that a producer holds one part (a wave of prompts) at a
/// time: the header first, then /nodes and /leaves extended part by part, then the tail. The
/// datasets equal those write_trajectory writes for the whole trajectory.
class TrajectoryWriter {
 public:
  /// Writes the root attributes, /prompts and /rollout of `header` (its nodes, leaves and later
  /// groups are not used) into an empty, open file and creates /nodes and /leaves empty.
  /// `expected_nodes` and `expected_leaves` (0 = not known) only size the chunks of small files.
  TrajectoryWriter(hid_t file, const Trajectory& header, const TrajectoryLayout& layout, const WriteOptions& options,
                   std::uint64_t expected_nodes = 0, std::uint64_t expected_leaves = 0);
  /// Appends the nodes, leaves and NFE counts of whole prompts, in prompt order. Node indices
  /// (nodes.parent, leaves.node) count from the part's first node; prompt indices are the file's.
  /// \throws Error (software) when the part does not match the layout
  void append(const Nodes& nodes, const Leaves& leaves, const std::vector<std::int64_t>& nfe);
  /// Writes /rewards, /advantages, /statistics and /provenance: the file is then complete.
  /// \throws Error (software) when the parts did not cover every prompt
  void finish(const std::vector<Reward>& rewards, const std::optional<Advantages>& advantages,
              const std::vector<std::string>& provenance);

  std::uint64_t nodes_written() const { return nodes_; }
  std::uint64_t leaves_written() const { return leaves_; }
  std::int64_t nfe_total() const;

 private:
  hid_t file_;
  TrajectoryLayout layout_;
  WriteOptions options_;
  LatentDtype dtype_;
  std::vector<std::uint64_t> latent_shape_;
  std::size_t prompts_ = 0;
  std::uint64_t nodes_ = 0, leaves_ = 0;
  std::vector<std::int64_t> nfe_;  // [P] small: kept until finish
};

/// Copies root members that this build does not know (other stages' groups) from `src` to `dst`.
void copy_unknown_members(hid_t src, hid_t dst);
/// Names of root members this build does not know.
std::vector<std::string> unknown_members(hid_t file);

}  // namespace treerpo::format
