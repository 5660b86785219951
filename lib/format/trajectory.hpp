// trajectory.hpp -- the trajectory file format, version 1: in-memory layout, names and
// invariants. The human spec is man/treerpo-trajectory.5; the machine one schemas/.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace treerpo::format {

inline constexpr const char* kFormatName = "trajectory";
inline constexpr std::int64_t kFormatMajor = 1;  ///< readers refuse a higher major
inline constexpr std::int64_t kFormatMinor = 4;  ///< and accept any minor (1.1 added /leaves/path,
                                                 ///< 1.2 writes /nodes/log_prob as float64, 1.3 the
                                                 ///< /rollout seed as uint64 and its guidance, 1.4
                                                 ///< the /rollout noise_block)

/// Kind of a tree node (HDF5 enum "trunk"/"branch"/"leaf" in /nodes/kind).
enum class NodeKind : std::uint8_t { trunk = 0, branch = 1, leaf = 2 };
const std::vector<std::string>& node_kind_labels();

/// Storage dtype of latents.
enum class LatentDtype { float32, float16 };
const char* latent_dtype_name(LatentDtype d);

/// A dense float32 array in row-major order (float16 files are widened on read).
struct FloatArray {
  std::vector<std::uint64_t> shape;
  std::vector<float> data;
};

/// A dense uint8 array (images, [items, height, width, channels]).
struct ByteArray {
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> data;
};

/// /prompts: the prompts, parallel datasets over the prompt axis P. The same group is the whole
/// content of a prompt file (treerpo_format = "prompts"), which users write from Python.
struct Prompts {
  std::vector<std::string> text;         ///< UTF-8
  std::vector<std::int64_t> id;          ///< stable id (noise is keyed by it), unique in a file
  std::optional<FloatArray> conditioning;  ///< [P, tokens, dim] precomputed text embeddings
  std::optional<FloatArray> pooled;        ///< [P, dim] pooled embeddings
  std::optional<ByteArray> mask;           ///< [P, tokens] 1 for real tokens, 0 for padding
};

/// /rollout: how the trajectories were sampled (attributes) and the sigma schedule.
struct RolloutConfig {
  std::string mode = "tree";              ///< tree | window | independent
  std::string kernel = "flowgrpo";        ///< flowgrpo | dance | cps
  std::string logprob_reduction = "mean"; ///< mean | sum over non-batch elements
  std::int64_t steps = 10;                ///< T
  double shift = 3.0;
  std::vector<double> sigmas;             ///< [T + 1], sigma_0 = 1 ... sigma_T = 0
  std::int64_t depth = 4;                 ///< window layers d
  std::vector<std::int64_t> branching;    ///< [d] children per node at each layer
  std::int64_t leaves_per_prompt = 16;    ///< G
  std::int64_t window_start = 0;          ///< l: first SDE step
  std::vector<double> noise_levels;       ///< [d] a_k per layer
  std::int64_t noise_block = 1;           ///< SDE noise on B x B pixel blocks (1: isotropic; absent before 1.4)
  std::int64_t iteration = 0;             ///< training iteration j (sliding window)
  std::uint64_t seed = 0;                 ///< master seed (a decimal string before 1.3)
  double guidance = 1.0;                  ///< classifier-free guidance scale (settings' "guidance" before 1.3)
  std::string model_digest;               ///< "sha256:..." of the policy weights, or a label
  std::string timestep_convention = "sigma";  ///< sigma | 1000sigma
  LatentDtype latent_dtype = LatentDtype::float32;
  std::vector<std::int64_t> latent_shape; ///< [C, H, W] of one latent
  std::string settings = "{}";            ///< JSON: the rest of the sampler's resolved settings
};

/// /nodes: every stored state, over the node axis N. Nodes are stored prompt by prompt in
/// ascending prompt order, and within a prompt every parent precedes its children.
struct Nodes {
  std::vector<std::int64_t> prompt;   ///< index into /prompts
  std::vector<std::int64_t> parent;   ///< index into /nodes, -1 for a root
  std::vector<std::int32_t> depth;    ///< tree depth: 0 root, k after k branchings
  std::vector<std::int32_t> step;     ///< schedule index i: the node's state is at sigma_i
  std::vector<NodeKind> kind;
  FloatArray latent;                  ///< [N, C, H, W]
  std::vector<double> log_prob;       ///< log-probability of parent -> node under the sampler; NaN if none
                                      ///< (float64 since 1.2; float32 files are widened on read)
  std::vector<float> noise_std;       ///< std of that Gaussian transition (of x' given x); 0 if deterministic
  std::vector<std::uint64_t> noise_key;  ///< key of the node's noise draw (rng::derive_key)
  std::optional<FloatArray> velocity; ///< [N, C, H, W] model velocity at the node (optional)
  std::size_t size() const { return prompt.size(); }
};

/// /leaves: the tree's leaves after the ODE suffix, over the leaf axis G.
struct Leaves {
  std::vector<std::int64_t> node;     ///< index into /nodes (a node of kind leaf)
  std::vector<std::int64_t> prompt;   ///< index into /prompts
  FloatArray latent;                  ///< [G, C, H, W] final latent at sigma_T = 0
  std::optional<ByteArray> image;     ///< [G, H, W, 3] decoded image, uint8 HWC
  /// [G, S, C, H, W] the ODE-suffix states of each leaf at steps l + d + 1 .. T - 1
  /// (S = T - l - d - 1; the state at T is `latent`), optional (format 1.1)
  std::optional<FloatArray> path;
  std::size_t size() const { return node.size(); }
};

/// /rewards/<name>: one score per leaf.
struct Reward {
  std::string name;
  double weight = 1.0;
  std::string settings = "{}";  ///< JSON
  std::vector<float> values;    ///< [G]
};

/// /advantages: one value per node = the edge parent -> node (NaN where no trainable edge).
struct Advantages {
  std::string method;
  std::string settings = "{}";  ///< JSON
  std::vector<float> edge;      ///< [N]
};

/// /statistics: model evaluations. Only deterministic values live in the data groups: wall-clock
/// timings go into the stage's provenance record, so reruns give identical datasets.
struct Statistics {
  std::vector<std::int64_t> nfe;  ///< [P] model forward passes spent per prompt
};

/// A whole trajectory file in memory.
struct Trajectory {
  std::int64_t format_minor = kFormatMinor;  ///< minor version read (written: kFormatMinor)
  Prompts prompts;
  RolloutConfig rollout;
  Nodes nodes;
  Leaves leaves;
  std::vector<Reward> rewards;
  std::optional<Advantages> advantages;
  Statistics statistics;
  std::vector<std::string> provenance;  ///< one JSON record per stage, oldest first
};

/// Prompts [begin, end) with their optional embeddings.
Prompts select_prompts(const Prompts& p, std::size_t begin, std::size_t end);

/// Root members this build understands; a stage copies every other member unchanged.
const std::vector<std::string>& known_root_members();

/// ODE-suffix states of a leaf that /leaves/path holds: steps l + d + 1 .. T - 1, so T - l - d - 1.
inline std::int64_t leaf_path_steps(std::int64_t steps, std::int64_t window_start, std::int64_t depth) {
  return steps - window_start - depth - 1;
}

/// NFE per prompt of a tree rollout (ALGORITHM.md section 3).
std::int64_t tree_nfe(std::int64_t steps, std::int64_t window_start, const std::vector<std::int64_t>& branching);

/// Checks structural invariants (lengths, index ranges, parent order, leaf kinds).
/// \throws DataError naming `file` and the offending dataset.
void check_invariants(const Trajectory& t, const std::string& file);

}  // namespace treerpo::format
