// test_core.cpp -- digests, float16 rounding, keyed random streams, shards.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "cli/context.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/half.hpp"
#include "core/rng.hpp"
#include "flow/schedule.hpp"
#include "format/trajectory.hpp"

using namespace treerpo;

TEST(Digest, KnownVectors) {
  EXPECT_EQ(sha256_of("", 0), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_of("abc", 3), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_of(two_blocks.data(), two_blocks.size()),
            "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Incremental updates of odd sizes give the same digest as one update.
  std::string big(100000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 251);
  Sha256 s;
  for (std::size_t i = 0; i < big.size(); i += 77) s.update(big.data() + i, std::min<std::size_t>(77, big.size() - i));
  EXPECT_EQ("sha256:" + s.hex(), sha256_of(big.data(), big.size()));
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7c00);            // rounds up to infinity
  EXPECT_EQ(float_to_half_bits(1.0f + 0x1.0p-11f), 0x3c00);   // tie -> even
  EXPECT_EQ(float_to_half_bits(1.0f + 0x1.8p-11f), 0x3c01);   // above tie -> up
  EXPECT_EQ(float_to_half_bits(0x1.0p-24f), 0x0001);          // smallest subnormal
  EXPECT_EQ(float_to_half_bits(0x1.0p-25f), 0x0000);          // tie at zero -> even
  EXPECT_EQ(float_to_half_bits(0x1.8p-25f), 0x0001);
  EXPECT_TRUE(std::isnan(half_bits_to_float(float_to_half_bits(NAN))));
  // Every finite half value survives half -> float -> half.
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    const float f = half_bits_to_float(static_cast<std::uint16_t>(h));
    ASSERT_EQ(float_to_half_bits(f), h) << h;
  }
  // Rounding error is at most half an ulp (float64 reference).
  for (int i = -2000; i < 2000; ++i) {
    const float x = static_cast<float>(i) * 0.0137f;
    const double err = std::fabs(double(round_to_half(x)) - double(x));
    const double ulp = std::ldexp(1.0, std::ilogb(std::max(std::fabs(double(x)), 0x1.0p-14)) - 10);
    EXPECT_LE(err, ulp / 2 + 1e-12) << x;
  }
}

TEST(Rng, KeyedStreamsArePureAndDistinct) {
  const auto k1 = rng::derive_key(7, rng::Domain::initial_noise, {3});
  EXPECT_EQ(k1, rng::derive_key(7, rng::Domain::initial_noise, {3}));
  EXPECT_NE(k1, rng::derive_key(8, rng::Domain::initial_noise, {3}));
  EXPECT_NE(k1, rng::derive_key(7, rng::Domain::branch_noise, {3}));
  EXPECT_NE(k1, rng::derive_key(7, rng::Domain::initial_noise, {4}));
  std::set<std::uint64_t> children;
  for (std::uint64_t c = 0; c < 1000; ++c) children.insert(rng::child_key(k1, c));
  EXPECT_EQ(children.size(), 1000u);
  // Standard normal moments (n = 200000: mean se 0.0022, var se 0.0032).
  rng::NormalStream s(k1);
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) { const double x = s.next(); sum += x; sq += x * x; }
  EXPECT_NEAR(sum / n, 0.0, 0.011);
  EXPECT_NEAR(sq / n, 1.0, 0.016);
}

TEST(Shard, RangesPartitionTheItems) {
  for (std::size_t items : {0u, 1u, 7u, 100u})
    for (std::uint32_t n = 1; n <= 5; ++n) {
      std::size_t next = 0;
      for (std::uint32_t i = 0; i < n; ++i) {
        auto [b, e] = cli::Shard{i, n}.range(items);
        EXPECT_EQ(b, next);
        EXPECT_LE(e - b, items / n + 1);
        next = e;
      }
      EXPECT_EQ(next, items);
    }
  EXPECT_EQ(cli::parse_shard("2/5", "--shard").index, 2u);
  EXPECT_THROW(cli::parse_shard("5/5", "--shard"), UsageError);
  EXPECT_THROW(cli::parse_shard("1/0", "--shard"), UsageError);
  EXPECT_THROW(cli::parse_shard("a/2", "--shard"), UsageError);
  EXPECT_THROW(cli::parse_shard("1/2x", "--shard"), UsageError);
}

TEST(Schedule, ShiftedSigmasAndNfe) {
  const auto s = flow::shifted_sigmas(10, 3.0);
  ASSERT_EQ(s.size(), 11u);
  EXPECT_DOUBLE_EQ(s[0], 1.0);
  EXPECT_DOUBLE_EQ(s[10], 0.0);
  EXPECT_DOUBLE_EQ(s[5], 3.0 * 0.5 / (1.0 + 2.0 * 0.5));
  for (std::size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i], s[i - 1]);
  // ALGORITHM.md section 3: trunk l + window sum prod b + leaves (T - l - d).
  EXPECT_EQ(format::tree_nfe(10, 0, {2, 2, 2, 2}), 0 + 15 + 16 * 6);
  EXPECT_EQ(format::tree_nfe(10, 3, {3, 2, 2}), 3 + (1 + 3 + 6) + 12 * 4);
}
