// rng.cpp -- key derivation and a small portable normal generator.
#include "core/rng.hpp"

#include <algorithm>
#include <numeric>

#include <cmath>

namespace treerpo::rng {
namespace {
inline std::uint64_t mix(std::uint64_t z) {  // SplitMix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
}  // namespace

std::uint64_t derive_key(std::uint64_t seed, Domain domain, std::initializer_list<std::uint64_t> indices) {
  std::uint64_t k = mix(seed + kGolden);
  k = mix(k ^ (static_cast<std::uint64_t>(domain) * kGolden));
  for (std::uint64_t i : indices) k = mix(k ^ mix(i + kGolden));
  return k;
}

std::uint64_t child_key(std::uint64_t parent_key, std::uint64_t child_index) {
  return mix(parent_key ^ mix(child_index + 0x632be59bd9b4e019ULL));
}

std::uint64_t NormalStream::next_u64() {
  state_ += kGolden;
  return mix(state_);
}

double NormalStream::next() {
  if (has_spare_) { has_spare_ = false; return spare_; }
  // u1 in (0, 1], u2 in [0, 1): 53-bit uniforms.
  const double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = next_uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 2.0 * M_PI * u2;
  spare_ = r * std::sin(t);
  has_spare_ = true;
  return r * std::cos(t);
}

void NormalStream::fill(float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(next());
}

std::vector<std::int64_t> permutation(std::uint64_t key, std::int64_t n) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  std::iota(order.begin(), order.end(), 0);
  NormalStream s(key);
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(order[static_cast<std::size_t>(i)],
              order[static_cast<std::size_t>(s.next_u64() % static_cast<std::uint64_t>(i + 1))]);
  return order;
}

}  // namespace treerpo::rng
