// test_util.hpp -- helpers shared by unit tests: temp dirs, full synthetic trajectories.
#pragma once
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <string>

#include "format/trajectory_io.hpp"
#include "h5/io.hpp"
#include "tools/synth.hpp"

namespace treerpo::test {

inline std::string temp_dir() {
  std::string tmpl = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/treerpo-test.XXXXXX";
  char* d = mkdtemp(tmpl.data());
  return d ? std::string(d) : std::string("/tmp");
}

/// A trajectory with every optional dataset and group filled.
inline format::Trajectory full_trajectory(format::LatentDtype dtype, std::size_t prompts = 3) {
  tools::SynthOptions o;
  o.latent_shape = {3, 8, 8};
  o.branching = {2, 3};
  o.depth = 2;
  o.steps = 6;
  o.window_start = 1;
  o.velocity = true;
  o.conditioning = {4, 5};
  o.latent_dtype = format::latent_dtype_name(dtype);
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < prompts; ++i) texts.push_back("prompt \xc3\xa9 " + std::to_string(i));  // UTF-8
  auto t = tools::synthesize(o, texts, {0, prompts}, 42);
  t.prompts.pooled = format::FloatArray{{prompts, 6}, std::vector<float>(prompts * 6, 0.25f)};
  t.prompts.mask = format::ByteArray{{prompts, 4}, std::vector<std::uint8_t>(prompts * 4, 1)};
  t.prompts.mask->data[3] = 0;
  format::Reward a{"shapes", 1.0, R"({"strict":true})", {}}, b{"brightness", 0.5, "{}", {}};
  for (std::size_t g = 0; g < t.leaves.size(); ++g) {
    a.values.push_back(static_cast<float>(g % 2));
    b.values.push_back(0.1f * static_cast<float>(g));
  }
  t.rewards = {a, b};
  format::Advantages adv{"tree", R"({"clip":5})", {}};
  for (std::size_t i = 0; i < t.nodes.size(); ++i)
    adv.edge.push_back(t.nodes.parent[i] < 0 ? std::nanf("") : 0.01f * static_cast<float>(i));
  t.advantages = adv;
  t.provenance = {R"({"tool":"test"})"};
  return t;
}

/// Writes `t` to `path` through the library's atomic output.
inline void write_file(const std::string& path, const format::Trajectory& t, int level = 3) {
  h5::OutputFile out(path, /*force=*/true, "test");
  format::write_trajectory(out.id(), t, format::WriteOptions{level});
  out.commit();
}

inline format::Trajectory read_file(const std::string& path) {
  auto in = h5::open_input(path);
  return format::read_trajectory(in.file.get(), path);
}

// Bitwise float equality that treats NaN == NaN.
template <typename T>
inline void expect_same(const std::vector<T>& a, const std::vector<T>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)), 0) << what;
}

inline void expect_equal(const format::Trajectory& a, const format::Trajectory& b) {
  EXPECT_EQ(a.prompts.text, b.prompts.text);
  EXPECT_EQ(a.prompts.id, b.prompts.id);
  ASSERT_EQ(a.prompts.conditioning.has_value(), b.prompts.conditioning.has_value());
  if (a.prompts.conditioning) expect_same(a.prompts.conditioning->data, b.prompts.conditioning->data, "conditioning");
  ASSERT_EQ(a.prompts.pooled.has_value(), b.prompts.pooled.has_value());
  if (a.prompts.pooled) expect_same(a.prompts.pooled->data, b.prompts.pooled->data, "pooled");
  ASSERT_EQ(a.prompts.mask.has_value(), b.prompts.mask.has_value());
  if (a.prompts.mask) {
    EXPECT_EQ(a.prompts.mask->data, b.prompts.mask->data);
  }
  const auto &r = a.rollout, &s = b.rollout;
  EXPECT_EQ(r.mode, s.mode);
  EXPECT_EQ(r.kernel, s.kernel);
  EXPECT_EQ(r.logprob_reduction, s.logprob_reduction);
  EXPECT_EQ(r.steps, s.steps);
  EXPECT_EQ(r.shift, s.shift);
  EXPECT_EQ(r.sigmas, s.sigmas);
  EXPECT_EQ(r.depth, s.depth);
  EXPECT_EQ(r.branching, s.branching);
  EXPECT_EQ(r.leaves_per_prompt, s.leaves_per_prompt);
  EXPECT_EQ(r.window_start, s.window_start);
  EXPECT_EQ(r.noise_levels, s.noise_levels);
  EXPECT_EQ(r.noise_block, s.noise_block);
  EXPECT_EQ(r.iteration, s.iteration);
  EXPECT_EQ(r.seed, s.seed);
  EXPECT_EQ(r.model_digest, s.model_digest);
  EXPECT_EQ(r.timestep_convention, s.timestep_convention);
  EXPECT_EQ(r.latent_dtype, s.latent_dtype);
  EXPECT_EQ(r.latent_shape, s.latent_shape);
  EXPECT_EQ(r.settings, s.settings);
  EXPECT_EQ(a.nodes.prompt, b.nodes.prompt);
  EXPECT_EQ(a.nodes.parent, b.nodes.parent);
  EXPECT_EQ(a.nodes.depth, b.nodes.depth);
  EXPECT_EQ(a.nodes.step, b.nodes.step);
  EXPECT_EQ(a.nodes.kind, b.nodes.kind);
  EXPECT_EQ(a.nodes.latent.shape, b.nodes.latent.shape);
  expect_same(a.nodes.latent.data, b.nodes.latent.data, "nodes/latent");
  expect_same(a.nodes.log_prob, b.nodes.log_prob, "log_prob");
  expect_same(a.nodes.noise_std, b.nodes.noise_std, "noise_std");
  EXPECT_EQ(a.nodes.noise_key, b.nodes.noise_key);
  ASSERT_EQ(a.nodes.velocity.has_value(), b.nodes.velocity.has_value());
  if (a.nodes.velocity) expect_same(a.nodes.velocity->data, b.nodes.velocity->data, "velocity");
  EXPECT_EQ(a.leaves.node, b.leaves.node);
  EXPECT_EQ(a.leaves.prompt, b.leaves.prompt);
  expect_same(a.leaves.latent.data, b.leaves.latent.data, "leaves/latent");
  ASSERT_EQ(a.leaves.image.has_value(), b.leaves.image.has_value());
  if (a.leaves.image) {
    EXPECT_EQ(a.leaves.image->shape, b.leaves.image->shape);
    EXPECT_EQ(a.leaves.image->data, b.leaves.image->data);
  }
  ASSERT_EQ(a.leaves.path.has_value(), b.leaves.path.has_value());
  if (a.leaves.path) {
    EXPECT_EQ(a.leaves.path->shape, b.leaves.path->shape);
    expect_same(a.leaves.path->data, b.leaves.path->data, "leaves/path");
  }
  ASSERT_EQ(a.rewards.size(), b.rewards.size());
  for (std::size_t i = 0; i < a.rewards.size(); ++i) {
    EXPECT_EQ(a.rewards[i].name, b.rewards[i].name);
    EXPECT_EQ(a.rewards[i].weight, b.rewards[i].weight);
    EXPECT_EQ(a.rewards[i].settings, b.rewards[i].settings);
    expect_same(a.rewards[i].values, b.rewards[i].values, "reward");
  }
  ASSERT_EQ(a.advantages.has_value(), b.advantages.has_value());
  if (a.advantages) {
    EXPECT_EQ(a.advantages->method, b.advantages->method);
    EXPECT_EQ(a.advantages->settings, b.advantages->settings);
    expect_same(a.advantages->edge, b.advantages->edge, "advantages");
  }
  EXPECT_EQ(a.statistics.nfe, b.statistics.nfe);
  EXPECT_EQ(a.provenance, b.provenance);
}

}  // namespace treerpo::test
