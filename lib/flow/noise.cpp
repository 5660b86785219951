// noise.cpp -- keyed Gaussian noise tensors.
#include "flow/noise.hpp"

#include <torch/torch.h>

#include "core/rng.hpp"

namespace treerpo::flow {

torch::Tensor keyed_normal(std::uint64_t key, const std::vector<std::int64_t>& shape) {
  auto x = torch::empty(shape, torch::kFloat);
  rng::NormalStream(key).fill(x.data_ptr<float>(), x.numel());
  return x;
}

}  // namespace treerpo::flow
