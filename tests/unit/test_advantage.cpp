// test_advantage.cpp -- edge advantages on hand-built trees against values worked out by hand
// (and a float64 reference written independently here), for every rule and both multi-reward
// aggregations; GRPO as the branching-1 case; degenerate groups; clipping; running statistics.
#include <gtest/gtest.h>

#include <cmath>

#include "advantage/edge_advantages.hpp"

using namespace treerpo::advantage;

namespace {
// One prompt, binary depth 2: node 0 root; 1, 2 its children; 3, 4 under 1; 5, 6 under 2.
// Leaves are nodes 3..6 in that order.
Forest binary_tree() { return Forest{{-1, 0, 0, 1, 1, 2, 2}, {0, 0, 0, 0, 0, 0, 0}, {0, 1, 1, 2, 2, 2, 2}, {3, 4, 5, 6}, 1}; }

Settings with(Rule r, Aggregate a = Aggregate::advantage) {
  Settings s;
  s.rule = r;
  s.aggregate = a;
  s.eps = 0;  // exact hand values
  return s;
}

void expect_edges(const Result& r, const std::vector<double>& want) {
  ASSERT_EQ(r.edge.size(), want.size());
  EXPECT_TRUE(std::isnan(r.edge[0]));  // the root has no trainable edge
  for (std::size_t n = 1; n < want.size(); ++n) EXPECT_NEAR(r.edge[n], want[n], 1e-12) << "node " << n;
}

// GRPO's advantage: (r - mean) / population std.
std::vector<double> grpo(const std::vector<double>& r) {
  double m = 0, ss = 0;
  for (double x : r) m += x;
  m /= static_cast<double>(r.size());
  for (double x : r) ss += (x - m) * (x - m);
  const double sd = std::sqrt(ss / static_cast<double>(r.size()));
  std::vector<double> a;
  for (double x : r) a.push_back((x - m) / sd);
  return a;
}
}  // namespace

TEST(Advantage, TreeRuleNormalisesNodeValuesPerDepth) {
  // Leaves 1, 2, 3, 4: depth 2 is GRPO on the leaves (mean 2.5, std sqrt(1.25));
  // depth 1 values 1.5 and 3.5 (mean 2.5, std 1) give -1 and +1.
  const double s = std::sqrt(1.25);
  const auto r = compute(binary_tree(), {{"r", 1.0, {1, 2, 3, 4}}}, with(Rule::tree));
  expect_edges(r, {0, -1, 1, -1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s});
  EXPECT_EQ(r.degenerate.at("r"), 0.0);
}

TEST(Advantage, LeafRuleAveragesTheLeavesAdvantages) {
  const double s = std::sqrt(1.25);
  const auto r = compute(binary_tree(), {{"r", 1.0, {1, 2, 3, 4}}}, with(Rule::leaf));
  expect_edges(r, {0, -1.0 / s, 1.0 / s, -1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s});
}

TEST(Advantage, SiblingRuleNormalisesAmongSiblings) {
  // Leaves 1, 5, 3, 3: depth 1 values 3 and 3 -> degenerate -> 0; (1, 5) -> -1, +1; (3, 3) -> 0, 0.
  const auto r = compute(binary_tree(), {{"r", 1.0, {1, 5, 3, 3}}}, with(Rule::sibling));
  expect_edges(r, {0, 0, 0, -1, 1, 0, 0});
}

TEST(Advantage, BothAggregationsOfTwoRewards) {
  const std::vector<double> a{1, 2, 3, 4}, b{0, 0, 1, 0};
  // advantage aggregation: each reward's tree advantages, weighted sum (w = 1 and 0.5).
  const auto ra = compute(binary_tree(), {{"a", 1.0, {1, 2, 3, 4}}}, with(Rule::tree));
  const auto rb = compute(binary_tree(), {{"b", 1.0, {0, 0, 1, 0}}}, with(Rule::tree));
  const auto both = compute(binary_tree(), {{"a", 1.0, a}, {"b", 0.5, b}}, with(Rule::tree));
  for (std::size_t n = 1; n < 7; ++n) EXPECT_NEAR(both.edge[n], ra.edge[n] + 0.5 * rb.edge[n], 1e-12);
  // reward aggregation: combined leaves 1, 2, 3.5, 4 -> GRPO at depth 2; depth 1: 1.5 vs 3.75.
  const auto sum = compute(binary_tree(), {{"a", 1.0, a}, {"b", 0.5, b}}, with(Rule::tree, Aggregate::reward));
  const auto g = grpo({1, 2, 3.5, 4});
  expect_edges(sum, {0, -1, 1, g[0], g[1], g[2], g[3]});
  EXPECT_EQ(sum.degenerate.count("combined"), 1u);
}

TEST(Advantage, BranchingOneReducesToGrpo) {
  // One prompt, fan-out 4 at the first layer then chains of two more steps (branching 4,1,1), and
  // the window baseline's layout (4 roots, branching 1): every edge of a trajectory gets GRPO's
  // advantage of its leaf, under every rule that applies.
  const std::vector<double> rewards{0.2, 0.9, 0.4, 0.4};
  const auto g = grpo(rewards);
  Forest fan{{-1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, std::vector<std::int64_t>(13, 0),
             {0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, {9, 10, 11, 12}, 1};
  for (const auto rule : {Rule::tree, Rule::leaf}) {
    const auto r = compute(fan, {{"r", 1.0, rewards}}, with(rule));
    for (std::size_t n = 1; n < 13; ++n) EXPECT_NEAR(r.edge[n], g[(n - 1) % 4], 1e-12) << rule_name(rule) << " " << n;
  }
  Forest chains{{-1, 0, 1, -1, 3, 4, -1, 6, 7, -1, 9, 10}, std::vector<std::int64_t>(12, 0),
                {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2}, {2, 5, 8, 11}, 1};
  const auto r = compute(chains, {{"r", 1.0, rewards}}, with(Rule::trajectory));
  for (std::size_t n = 0; n < 12; ++n) {
    if (n % 3 == 0) EXPECT_TRUE(std::isnan(r.edge[n]));
    else EXPECT_NEAR(r.edge[n], g[n / 3], 1e-12);
  }
}

TEST(Advantage, DegenerateGroupsClippingAndErrors) {
  auto s = with(Rule::tree);
  const auto flat = compute(binary_tree(), {{"r", 1.0, {2, 2, 2, 2}}}, s);
  expect_edges(flat, {0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(flat.degenerate.at("r"), 1.0);
  // Clipping: GRPO on 16 leaves with one outlier reaches sqrt(15) ~ 3.87 > 2.
  Forest wide{{-1}, {0}, {0}, {}, 1};
  std::vector<double> rw(16, 0.0);
  rw[3] = 1;
  for (int i = 0; i < 16; ++i) {
    wide.parent.push_back(0), wide.prompt.push_back(0), wide.depth.push_back(1);
    wide.leaf_node.push_back(i + 1);
  }
  s.clip = 2;
  const auto c = compute(wide, {{"r", 1.0, rw}}, s);
  EXPECT_DOUBLE_EQ(c.edge[4], 2.0);
  EXPECT_NEAR(c.clipped_fraction, 1.0 / 16, 1e-12);
  EXPECT_THROW(compute(binary_tree(), {{"bad", 1.0, {1, NAN, 2, 3}}}, s), std::invalid_argument);
  try {
    compute(binary_tree(), {{"pickscore", 1.0, {1, INFINITY, 2, 3}}}, s);
    ADD_FAILURE() << "an infinite reward was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("pickscore"), std::string::npos);  // names the reward
  }
  EXPECT_THROW(compute(binary_tree(), {{"r", 1.0, {1, 2}}}, s), std::invalid_argument);
}

TEST(Advantage, RunningStatisticsAccumulateAcrossIterations) {
  RunningStats tracker;
  auto s = with(Rule::leaf);
  const auto first = compute(binary_tree(), {{"r", 1.0, {1, 2, 3, 4}}}, s, &tracker, {"a red circle"});
  // After one group the running stats are the group's: the same as without tracking.
  const auto plain = compute(binary_tree(), {{"r", 1.0, {1, 2, 3, 4}}}, s);
  for (std::size_t n = 1; n < 7; ++n) EXPECT_NEAR(first.edge[n], plain.edge[n], 1e-12);
  // A second group of the same prompt is normalised by the stats of all eight rewards.
  const auto second = compute(binary_tree(), {{"r", 1.0, {5, 6, 7, 8}}}, s, &tracker, {"a red circle"});
  const auto& e = tracker.by_reward.at("r").at("a red circle");
  EXPECT_EQ(e.n, 8);
  EXPECT_NEAR(e.mean, 4.5, 1e-12);
  const double sd = std::sqrt(e.m2 / 8);
  EXPECT_NEAR(sd, std::sqrt(5.25), 1e-12);
  EXPECT_NEAR(second.edge[3], (5 - 4.5) / sd, 1e-12);
  EXPECT_THROW(compute(binary_tree(), {{"r", 1.0, {1, 2, 3, 4}}}, with(Rule::tree), &tracker, {"x"}),
               std::invalid_argument);
}

TEST(Advantage, StoredTrunkStatesAreNotEdges) {
  // The binary tree behind a two-state trunk chain: nodes 0 -> 1 -> 2 (depth 0), then as before.
  Forest f{{-1, 0, 1, 2, 2, 3, 3, 4, 4}, std::vector<std::int64_t>(9, 0), {0, 0, 0, 1, 1, 2, 2, 2, 2}, {5, 6, 7, 8}, 1};
  const double s = std::sqrt(1.25);
  for (const auto rule : {Rule::tree, Rule::leaf, Rule::sibling}) {
    const auto r = compute(f, {{"r", 1.0, {1, 2, 3, 4}}}, with(rule));
    for (int n = 0; n < 3; ++n) EXPECT_TRUE(std::isnan(r.edge[static_cast<std::size_t>(n)])) << rule_name(rule) << " " << n;
    if (rule == Rule::tree) EXPECT_NEAR(r.edge[8], 1.5 / s, 1e-12);
  }
}
