// merge.cpp -- shard merging with strict compatibility checks.
#include "tools/merge.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/summary.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "tools/stage_io.hpp"

namespace treerpo::tools {
namespace {
using format::Trajectory;

// The rollout configuration as comparable (name, value) pairs.
std::vector<std::pair<std::string, std::string>> config_fields(const format::RolloutConfig& r) {
  auto list = [](const auto& v) { return nlohmann::json(v).dump(); };
  return {{"mode", r.mode},
          {"kernel", r.kernel},
          {"logprob_reduction", r.logprob_reduction},
          {"steps", std::to_string(r.steps)},
          {"shift", list(r.shift)},
          {"sigmas", list(r.sigmas)},
          {"depth", std::to_string(r.depth)},
          {"branching", list(r.branching)},
          {"window_start", std::to_string(r.window_start)},
          {"noise_levels", list(r.noise_levels)},
          {"noise_block", std::to_string(r.noise_block)},
          {"iteration", std::to_string(r.iteration)},
          {"seed", std::to_string(r.seed)},
          {"guidance", list(r.guidance)},
          {"model_digest", r.model_digest},
          {"timestep_convention", r.timestep_convention},
          {"latent_dtype", format::latent_dtype_name(r.latent_dtype)},
          {"latent_shape", list(r.latent_shape)},
          {"settings", r.settings}};
}

void check_compatible(const Trajectory& a, const std::string& an, const Trajectory& b, const std::string& bn) {
  const auto fa = config_fields(a.rollout), fb = config_fields(b.rollout);
  for (std::size_t i = 0; i < fa.size(); ++i)
    if (fa[i].second != fb[i].second)
      throw DataError(bn + ": /rollout " + fa[i].first + " is " + fb[i].second + " but " + an + " has " +
                      fa[i].second + " (shards of one run must share the configuration)");
  auto reward_sig = [](const Trajectory& t) {
    std::vector<std::string> sig;
    for (const auto& r : t.rewards) sig.push_back(r.name + " weight " + std::to_string(r.weight) + " " + r.settings);
    return sig;
  };
  if (reward_sig(a) != reward_sig(b))
    throw DataError(bn + ": /rewards differ from " + an + " (names, weights or settings)");
  if (a.advantages.has_value() != b.advantages.has_value() ||
      (a.advantages &&
       (a.advantages->method != b.advantages->method || a.advantages->settings != b.advantages->settings)))
    throw DataError(bn + ": /advantages differ from " + an + " (present in one only, or another method)");
  if (a.prompts.conditioning.has_value() != b.prompts.conditioning.has_value() ||
      a.prompts.pooled.has_value() != b.prompts.pooled.has_value() ||
      a.prompts.mask.has_value() != b.prompts.mask.has_value() ||
      a.nodes.velocity.has_value() != b.nodes.velocity.has_value() ||
      a.leaves.image.has_value() != b.leaves.image.has_value() ||
      a.leaves.path.has_value() != b.leaves.path.has_value())
    throw DataError(bn + ": optional datasets differ from " + an);
}

// Appends items [begin, end) of a row-major array (first axis = item).
template <typename A>
void append_rows(A& dst, const A& src, std::size_t begin, std::size_t end) {
  const std::size_t items = src.shape.empty() ? 0 : src.shape[0];
  const std::size_t row = items ? src.data.size() / items : 0;
  if (dst.shape.empty()) { dst.shape = src.shape; dst.shape[0] = 0; }
  dst.data.insert(dst.data.end(), src.data.begin() + static_cast<std::ptrdiff_t>(begin * row),
                  src.data.begin() + static_cast<std::ptrdiff_t>(end * row));
  dst.shape[0] += end - begin;
}
}  // namespace

Trajectory merge_trajectories(const std::vector<Trajectory>& shards, const std::vector<std::string>& names) {
  if (shards.empty()) throw UsageError("no input files to merge");
  for (std::size_t i = 1; i < shards.size(); ++i) check_compatible(shards[0], names[0], shards[i], names[i]);

  // Every prompt, in id order, with where it lives.
  struct Source { std::size_t shard, prompt; };
  std::map<std::int64_t, Source> order;
  for (std::size_t s = 0; s < shards.size(); ++s)
    for (std::size_t p = 0; p < shards[s].prompts.id.size(); ++p) {
      const auto id = shards[s].prompts.id[p];
      auto [it, inserted] = order.emplace(id, Source{s, p});
      if (!inserted)
        throw DataError(names[s] + ": prompt id " + std::to_string(id) + " is also in " + names[it->second.shard] +
                        " (shards must hold disjoint prompts)");
    }

  // Node and leaf ranges of each prompt in each shard (files store them prompt by prompt).
  auto ranges = [](const std::vector<std::int64_t>& owner, std::size_t prompts) {
    std::vector<std::pair<std::size_t, std::size_t>> r(prompts, {0, 0});
    for (std::size_t i = 0; i < owner.size(); ++i) {
      auto& x = r[static_cast<std::size_t>(owner[i])];
      if (x.second == 0) x.first = i;
      x.second = i + 1;
    }
    return r;
  };
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> node_ranges, leaf_ranges;
  for (const auto& t : shards) {
    node_ranges.push_back(ranges(t.nodes.prompt, t.prompts.id.size()));
    leaf_ranges.push_back(ranges(t.leaves.prompt, t.prompts.id.size()));
  }

  Trajectory out;
  out.rollout = shards[0].rollout;
  for (const auto& r : shards[0].rewards) out.rewards.push_back({r.name, r.weight, r.settings, {}});
  if (shards[0].advantages)
    out.advantages = format::Advantages{shards[0].advantages->method, shards[0].advantages->settings, {}};
  if (shards[0].prompts.conditioning) out.prompts.conditioning.emplace();
  if (shards[0].prompts.pooled) out.prompts.pooled.emplace();
  if (shards[0].prompts.mask) out.prompts.mask.emplace();
  if (shards[0].nodes.velocity) out.nodes.velocity.emplace();
  if (shards[0].leaves.image) out.leaves.image.emplace();
  if (shards[0].leaves.path) out.leaves.path.emplace();

  for (const auto& t : shards) out.provenance.insert(out.provenance.end(), t.provenance.begin(), t.provenance.end());

  for (const auto& [id, src] : order) {
    const Trajectory& t = shards[src.shard];
    const auto p = src.prompt;
    const auto new_prompt = static_cast<std::int64_t>(out.prompts.id.size());
    out.prompts.text.push_back(t.prompts.text[p]);
    out.prompts.id.push_back(id);
    if (t.prompts.conditioning) append_rows(*out.prompts.conditioning, *t.prompts.conditioning, p, p + 1);
    if (t.prompts.pooled) append_rows(*out.prompts.pooled, *t.prompts.pooled, p, p + 1);
    if (t.prompts.mask) append_rows(*out.prompts.mask, *t.prompts.mask, p, p + 1);
    out.statistics.nfe.push_back(t.statistics.nfe[p]);

    const auto [nb, ne] = node_ranges[src.shard][p];
    const auto node_offset = static_cast<std::int64_t>(out.nodes.size()) - static_cast<std::int64_t>(nb);
    for (std::size_t i = nb; i < ne; ++i) {
      out.nodes.prompt.push_back(new_prompt);
      out.nodes.parent.push_back(t.nodes.parent[i] < 0 ? -1 : t.nodes.parent[i] + node_offset);
      out.nodes.depth.push_back(t.nodes.depth[i]);
      out.nodes.step.push_back(t.nodes.step[i]);
      out.nodes.kind.push_back(t.nodes.kind[i]);
      out.nodes.log_prob.push_back(t.nodes.log_prob[i]);
      out.nodes.noise_std.push_back(t.nodes.noise_std[i]);
      out.nodes.noise_key.push_back(t.nodes.noise_key[i]);
      if (t.advantages) out.advantages->edge.push_back(t.advantages->edge[i]);
    }
    append_rows(out.nodes.latent, t.nodes.latent, nb, ne);
    if (t.nodes.velocity) append_rows(*out.nodes.velocity, *t.nodes.velocity, nb, ne);

    const auto [lb, le] = leaf_ranges[src.shard][p];
    for (std::size_t g = lb; g < le; ++g) {
      out.leaves.node.push_back(t.leaves.node[g] + node_offset);
      out.leaves.prompt.push_back(new_prompt);
      for (std::size_t r = 0; r < t.rewards.size(); ++r) out.rewards[r].values.push_back(t.rewards[r].values[g]);
    }
    append_rows(out.leaves.latent, t.leaves.latent, lb, le);
    if (t.leaves.image) append_rows(*out.leaves.image, *t.leaves.image, lb, le);
    if (t.leaves.path) append_rows(*out.leaves.path, *t.leaves.path, lb, le);
  }
  // Empty arrays still need their item shape.
  auto shape_of = [&](format::FloatArray& a, const format::FloatArray& like) {
    if (a.shape.empty()) { a.shape = like.shape; a.shape[0] = 0; }
  };
  shape_of(out.nodes.latent, shards[0].nodes.latent);
  shape_of(out.leaves.latent, shards[0].leaves.latent);
  if (out.leaves.path) shape_of(*out.leaves.path, *shards[0].leaves.path);
  format::check_invariants(out, "merged output");
  return out;
}

void add_merge_options(CLI::App& app, MergeOptions& o) {
  app.add_option("inputs", o.inputs, "Shard files (one of them may be - for stdin)")->required();
  app.add_option("--zstd-level", o.zstd_level, "Zstandard level of the datasets; 0 = uncompressed")
      ->capture_default_str();
}

void validate(const MergeOptions& o, const cli::Given&) {
  if (std::count(o.inputs.begin(), o.inputs.end(), "-") > 1) throw UsageError("stdin (-) can be read only once");
  if (o.zstd_level < 0 || o.zstd_level > 22) throw UsageError("--zstd-level: expected 0..22");
}

int run_merge(const MergeOptions& o, cli::Context& ctx, const std::string& output) {
  cli::check_stdout_free(ctx, output);
  std::vector<LoadedTrajectory> loaded;
  std::vector<format::Trajectory> shards;
  std::vector<std::string> names;
  std::vector<cli::InputRecord> records;
  for (const auto& path : o.inputs) {
    loaded.push_back(load_trajectory(path));
    auto unknown = format::unknown_members(loaded.back().file.file.get());
    if (!unknown.empty())
      throw DataError(loaded.back().file.name + ": /" + unknown[0] +
                      ": group unknown to this build; merge cannot tell how to combine it");
    names.push_back(loaded.back().file.name);
    records.push_back(loaded.back().record());
    shards.push_back(std::move(loaded.back().trajectory));
  }
  format::Trajectory merged = merge_trajectories(shards, names);
  const std::size_t bytes = save_trajectory(output, merged, ctx, records, format::WriteOptions{o.zstd_level});
  log::summary("merged " + std::to_string(shards.size()) + " files: " + std::to_string(merged.prompts.id.size()) +
               " prompts, " + std::to_string(merged.nodes.size()) + " nodes (" + std::to_string(bytes) + " bytes)");
  if (ctx.json)
    cli::print_json_summary(ctx, output,
                            {{"inputs", o.inputs},
                             {"prompts", merged.prompts.id.size()},
                             {"nodes", merged.nodes.size()},
                             {"leaves", merged.leaves.size()},
                             {"bytes", bytes}});
  return 0;
}

cli::ToolSpec merge_spec() {
  cli::ToolSpec spec;
  spec.name = "treerpo-merge";
  spec.summary = "Merge shard trajectory files of one run (disjoint prompts) into one file";
  spec.footer = "Example: treerpo-merge shard0.h5 shard1.h5 -o all.h5; see treerpo-merge(1).";
  spec.common.output = true;
  return cli::make_tool<MergeOptions>(spec, add_merge_options, validate, run_merge);
}

}  // namespace treerpo::tools
