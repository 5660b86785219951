// noise.hpp -- Gaussian noise as tensors, keyed by what it belongs to (a node's path, a training
// item), so that rollouts, evaluation and training draw the same numbers on any batch or thread.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace treerpo::flow {

/// Standard normal noise from the stream of `key` (rng::NormalStream), float32 of `shape`.
torch::Tensor keyed_normal(std::uint64_t key, const std::vector<std::int64_t>& shape);

}  // namespace treerpo::flow
