// test_merge.cpp -- merging shards equals the unsharded file; mismatched shards are refused.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "test_util.hpp"
#include "tools/merge.hpp"

using namespace treerpo;

namespace {
tools::SynthOptions small() {
  tools::SynthOptions o;
  o.latent_shape = {3, 4, 4};
  o.depth = 2;
  o.steps = 5;
  o.velocity = true;
  o.conditioning = {2, 3};
  return o;
}
std::vector<std::string> texts(std::size_t n) {
  std::vector<std::string> t;
  for (std::size_t i = 0; i < n; ++i) t.push_back("p" + std::to_string(i));
  return t;
}
}  // namespace

TEST(Merge, ShardsMergeToTheSingleRun) {
  const auto o = small();
  const auto all = texts(7);
  const auto whole = tools::synthesize(o, all, {0, 7}, 3);
  for (std::uint32_t n : {1u, 2u, 3u, 7u}) {
    std::vector<format::Trajectory> shards;
    std::vector<std::string> names;
    for (std::uint32_t i = n; i-- > 0;) {  // reverse order: merge sorts by prompt id
      shards.push_back(tools::synthesize(o, all, cli::Shard{i, n}.range(all.size()), 3));
      names.push_back("shard" + std::to_string(i));
    }
    auto merged = tools::merge_trajectories(shards, names);
    merged.provenance.clear();
    test::expect_equal(whole, merged);
  }
}

TEST(Merge, RefusesMismatchedShards) {
  const auto o = small();
  const auto all = texts(4);
  const auto a = tools::synthesize(o, all, {0, 2}, 3);
  auto other = o;
  other.steps = 6;
  const auto b = tools::synthesize(other, all, {2, 4}, 3);
  try {
    tools::merge_trajectories({a, b}, {"a.h5", "b.h5"});
    FAIL() << "merged shards of different schedules";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("b.h5: /rollout steps is 6 but a.h5 has 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tools::merge_trajectories({a, tools::synthesize(o, all, {2, 4}, 4)}, {"a", "b"}), DataError);  // seed
  EXPECT_THROW(tools::merge_trajectories({a, a}, {"a", "a2"}), DataError);  // same prompts twice
  auto c = tools::synthesize(o, all, {2, 4}, 3);
  c.rewards.push_back({"r", 1.0, "{}", std::vector<float>(c.leaves.size(), 0.f)});
  EXPECT_THROW(tools::merge_trajectories({a, c}, {"a", "c"}), DataError);  // rewards differ
}
