// rng.hpp -- noise keyed by what it belongs to: (seed, domain, ids...), never by batch position.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace treerpo::rng {

/// Fixed random domains; a stream's key is derived from (seed, domain, indices).
enum class Domain : std::uint64_t {
  initial_noise = 1,   ///< a prompt's initial latent x_{sigma_0}, keyed by (iteration, prompt id, root)
  branch_noise = 2,    ///< an SDE transition into a tree node
  synthetic = 3,       ///< synthetic test trajectories (treerpo-synth)
  minibatch = 4,       ///< training minibatch order
  sft_noise = 5,       ///< fresh noise of supervised terms
  evaluation = 6,      ///< initial noise of evaluation samples, keyed by (prompt id, sample)
  window = 7,          ///< the random sliding-window position of an iteration
  edge_order = 8,      ///< the order of trainable edges in an RL update, keyed by (iteration, epoch)
  sft_target = 9,      ///< fresh noise of LayerTuning-RL's SFT term, keyed by (iteration, prompt id, layer)
  sft_dataset = 10,    ///< the dataset target's pairs, sigma and noise, keyed by (iteration, minibatch, item)
  prompt_order = 11,   ///< treerpo-shapes prompts --shuffle: the order of a split's prompts, keyed by (split)
  nft_noise = 12,      ///< sigma and noise of the NFT objective, keyed by (iteration, prompt id, leaf in prompt, draw)
};

/// A well-mixed 64-bit key for (seed, domain, indices...). Pure function, platform-independent.
std::uint64_t derive_key(std::uint64_t seed, Domain domain, std::initializer_list<std::uint64_t> indices);

/// Extends a tree node's key by the index of one of its children (the node path).
std::uint64_t child_key(std::uint64_t parent_key, std::uint64_t child_index);

/// A keyed permutation of 0..n-1 (Fisher-Yates driven by NormalStream(key).next_u64()).
std::vector<std::int64_t> permutation(std::uint64_t key, std::int64_t n);

/// Counter-based stream of standard normal floats from a key (SplitMix64 + Box-Muller,
/// computed in double): the same key gives the same numbers on every machine and thread.
class NormalStream {
 public:
  explicit NormalStream(std::uint64_t key) : state_(key) {}
  double next();
  std::uint64_t next_u64();
  /// A uniform in [0, 1) with 53 random bits, from one next_u64().
  double next_uniform() { return unit_interval(next_u64()); }
  /// Fills out[0, n) with the next n normals, as float.
  void fill(float* out, std::int64_t n);
  /// [0, 1) from the top 53 bits of a 64-bit draw.
  static double unit_interval(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace treerpo::rng
