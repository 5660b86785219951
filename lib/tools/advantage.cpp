// advantage.cpp -- the advantage stage: rewards and tree of a scored file in, /advantages out,
// with an optional per-prompt running-statistics state file updated atomically.
#include "tools/advantage.hpp"

#include <CLI/CLI.hpp>

#include <cmath>
#include <fstream>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "advantage/edge_advantages.hpp"
#include "advantage/health.hpp"
#include "cli/choice.hpp"
#include "cli/summary.hpp"
#include "core/atomic_output.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "tools/stage_io.hpp"

namespace treerpo::tools {
namespace {
constexpr const char* kStatsFormat = "treerpo-stat-tracking";

advantage::RunningStats read_stats(const std::string& path) {
  advantage::RunningStats s;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return s;  // the first iteration starts it
  std::ifstream f(path);
  const auto j = nlohmann::json::parse(f, nullptr, false);
  if (!j.is_object() || j.value("format", "") != kStatsFormat || j.value("version", 0) != 1 || !j.contains("rewards"))
    throw DataError(path + ": not a stat-tracking state file (expected {\"format\": \"" + kStatsFormat +
                    "\", \"version\": 1})");
  for (const auto& [reward, prompts] : j["rewards"].items())
    for (const auto& [prompt, e] : prompts.items())
      s.by_reward[reward][prompt] = {e.at("n").get<double>(), e.at("mean").get<double>(), e.at("m2").get<double>()};
  return s;
}

std::string stats_json(const advantage::RunningStats& s) {
  nlohmann::ordered_json j{{"format", kStatsFormat}, {"version", 1}, {"rewards", nlohmann::ordered_json::object()}};
  for (const auto& [reward, prompts] : s.by_reward)
    for (const auto& [prompt, e] : prompts) j["rewards"][reward][prompt] = {{"n", e.n}, {"mean", e.mean}, {"m2", e.m2}};
  return j.dump(1) + "\n";
}

// The rewards this run uses, with --weight overrides applied. \throws DataError, UsageError
std::vector<advantage::RewardInput> select_rewards(const AdvantageOptions& o, const LoadedTrajectory& in) {
  const auto& t = in.trajectory;
  if (t.rewards.empty())
    throw DataError(in.file.name + ": /rewards: no rewards (score the file first: score --reward NAME)");
  std::map<std::string, double> override;
  for (const auto& w : o.weights) {
    const auto eq = w.find('=');
    try {
      if (eq == std::string::npos) throw std::invalid_argument("no =");
      override[w.substr(0, eq)] = std::stod(w.substr(eq + 1));
    } catch (const std::exception&) {
      throw UsageError("--weight " + w + ": expected NAME=NUMBER");
    }
  }
  std::vector<advantage::RewardInput> rewards;
  for (const auto& r : t.rewards) {
    if (!o.rewards.empty() && std::find(o.rewards.begin(), o.rewards.end(), r.name) == o.rewards.end()) continue;
    advantage::RewardInput ri{r.name, override.count(r.name) ? override[r.name] : r.weight, {}};
    for (std::size_t g = 0; g < r.values.size(); ++g) {
      if (!std::isfinite(r.values[g]))
        throw DataError(in.file.name + ": /rewards/" + r.name + ": leaf " + std::to_string(g) + " is " +
                        std::to_string(r.values[g]) + " (a finite reward expected)");
      ri.values.push_back(r.values[g]);
    }
    rewards.push_back(std::move(ri));
  }
  for (const auto& name : o.rewards)
    if (std::none_of(rewards.begin(), rewards.end(), [&](const auto& r) { return r.name == name; }))
      throw DataError(in.file.name + ": /rewards/" + name + ": no such reward in the file");
  for (const auto& [name, w] : override)
    if (std::none_of(rewards.begin(), rewards.end(), [&](const auto& r) { return r.name == name; }))
      throw UsageError("--weight " + name + ": the file has no reward of that name");
  return rewards;
}

// The normalisation settings of this run for a file of rollout `mode`. \throws UsageError
advantage::Settings settings_for(const AdvantageOptions& o, const std::string& mode) {
  advantage::Settings s;
  // Independent trajectories (window / independent rollouts): every edge of a trajectory
  // gets the trajectory's group-normalised advantage, whatever --method says.
  const bool chains = mode == "window" || mode == "independent";
  s.rule = chains ? advantage::Rule::trajectory : o.method;
  if (chains && o.method != advantage::Rule::tree)
    log::info(std::string("--method ") + advantage::rule_name(o.method) + " ignored: a " + mode +
              " rollout uses the trajectory rule");
  s.aggregate = o.aggregate;
  s.sample_std = o.sample_std;
  s.eps = o.eps;
  s.min_std = o.min_std;
  s.clip = o.clip;
  if (!o.stat_tracking.empty() && (s.rule == advantage::Rule::tree || s.rule == advantage::Rule::sibling))
    throw UsageError("--stat-tracking applies to the leaf rule (and window/independent rollouts); add --method leaf");
  return s;
}

// Health: a signal that looks fine but trains on nothing is said, recorded in the provenance,
// and refused with --strict-health. Returns the findings as JSON.
nlohmann::ordered_json check_health(const AdvantageOptions& o, cli::Context& ctx, const LoadedTrajectory& in,
                                    const std::vector<advantage::RewardInput>& rewards, const advantage::Settings& s,
                                    const std::vector<float>& edge) {
  std::vector<advantage::HealthReward> checked;
  for (const auto& r : rewards) checked.push_back({r.name, r.values});
  advantage::HealthThresholds th;
  th.min_std = s.min_std;
  const auto& t = in.trajectory;
  const auto health = advantage::data_health(t.leaves.prompt, t.prompts.text.size(), checked, edge, th);
  nlohmann::ordered_json health_json = nlohmann::ordered_json::array();
  std::string health_text;
  for (const auto& h : health) {
    ctx.health.push_back(h.check + ": " + h.message);
    health_json.push_back({{"check", h.check}, {"message", h.message}});
    health_text += (health_text.empty() ? "" : "; ") + h.message;
  }
  if (o.strict_health && !health.empty())
    throw DataError(in.file.name + ": health check failed (--strict-health): " + health_text);
  for (const auto& h : health) log::warning(in.file.name + ": " + h.message);
  return health_json;
}

void print_summary(const AdvantageOptions& o, const cli::Context& ctx, const std::string& output,
                   const advantage::Result& res, const advantage::Settings& s, std::size_t bytes,
                   const nlohmann::ordered_json& health, double seconds) {
  nlohmann::ordered_json depth = nlohmann::ordered_json::object();
  std::string per_depth;
  for (const auto& [d, ms] : res.per_depth) {
    depth[std::to_string(d)] = {{"mean", ms.first}, {"std", ms.second}};
    per_depth += " " + std::to_string(d) + ":" + std::to_string(ms.first).substr(0, 6) + "/" +
                 std::to_string(ms.second).substr(0, 5);
  }
  std::string degenerate;
  for (const auto& [name, f] : res.degenerate) degenerate += " " + name + " " + std::to_string(f).substr(0, 5);
  const std::string aggregate = advantage::aggregate_name(o.aggregate);
  log::summary(std::string(advantage::rule_name(s.rule)) + " advantages (" + aggregate + " aggregation): depth " +
               "mean/std" + per_depth + "; degenerate groups" + degenerate + "; clipped " +
               std::to_string(res.clipped_fraction).substr(0, 6) + "; " + std::to_string(bytes) + " bytes to " +
               (output == "-" ? std::string("<stdout>") : output));
  if (ctx.json)
    cli::print_json_summary(ctx, output,
                            {{"method", advantage::rule_name(s.rule)},
                             {"aggregate", aggregate},
                             {"per_depth", depth},
                             {"degenerate_groups", res.degenerate},
                             {"clipped_fraction", res.clipped_fraction},
                             {"health", health},
                             {"bytes", bytes},
                             {"seconds", seconds}});
}
}  // namespace

void add_advantage_options(CLI::App& app, AdvantageOptions& o) {
  app.add_option("input", o.input, "Scored trajectory file; - = stdin (the default)")->capture_default_str();
  cli::add_choice(
      app, "--method", o.method,
      {{"tree", advantage::Rule::tree}, {"leaf", advantage::Rule::leaf}, {"sibling", advantage::Rule::sibling}},
      "Edge rule: tree (node values normalised per depth), leaf (mean of the leaves' advantages) or "
      "sibling (normalised among siblings)");
  cli::add_choice(app, "--aggregate", o.aggregate,
                  {{"advantage", advantage::Aggregate::advantage}, {"reward", advantage::Aggregate::reward}},
                  "Several rewards: advantage (normalise each, then weighted sum) or reward (weighted sum, then "
                  "normalise)");
  cli::add_choice(app, "--std", o.sample_std, {{"population", false}, {"sample", true}},
                  "Group standard deviation: population (ddof 0) or sample (ddof 1)");
  app.add_option("--eps", o.eps, "Added to the standard deviation")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--min-std", o.min_std, "A group whose standard deviation is below gets advantage 0")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--clip", o.clip, "Clip advantages to [-C, C]; 0 = no clipping")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--reward", o.rewards, "Use only these rewards of the file (repeatable; default: all)")
      ->allow_extra_args(false);
  app.add_option("--weight", o.weights, "Override a reward's weight: NAME=W (repeatable)")->allow_extra_args(false);
  app.add_option("--stat-tracking", o.stat_tracking, "Per-prompt running statistics across iterations in this "
                 "state file (created if missing, updated atomically); leaf rule");
  app.add_option("--zstd-level", o.zstd_level, "Zstandard level of the datasets; 0 = uncompressed")
      ->check(CLI::Range(0, 22))->capture_default_str();
  app.add_flag("--strict-health", o.strict_health, "Refuse (exit 65) instead of warning when a health check "
               "fails: most groups without reward spread, advantages all near zero, a collapsed or saturated reward");
}

void validate(const AdvantageOptions&, const cli::Given&) {}  // every rule depends on the input's rollout mode

int run_advantage(const AdvantageOptions& o, cli::Context& ctx, const std::string& output) {
  const auto start = std::chrono::steady_clock::now();
  cli::check_stdout_free(ctx, output);
  auto in = load_trajectory(o.input);
  auto& t = in.trajectory;
  const auto rewards = select_rewards(o, in);
  const auto s = settings_for(o, t.rollout.mode);
  advantage::Forest forest{t.nodes.parent, t.nodes.prompt, t.nodes.depth, t.leaves.node, t.prompts.text.size()};
  advantage::RunningStats stats;
  if (!o.stat_tracking.empty()) stats = read_stats(o.stat_tracking);
  advantage::Result res;
  try {
    res = advantage::compute(forest, rewards, s, o.stat_tracking.empty() ? nullptr : &stats, t.prompts.text);
  } catch (const std::invalid_argument& e) {
    throw DataError(in.file.name + ": " + e.what());
  }
  nlohmann::ordered_json weights = nlohmann::ordered_json::object();
  for (const auto& r : rewards) weights[r.name] = r.weight;
  format::Advantages adv;
  adv.method = advantage::rule_name(s.rule);
  adv.settings = nlohmann::ordered_json{{"aggregate", advantage::aggregate_name(o.aggregate)},
                                        {"std", o.sample_std ? "sample" : "population"},
                                        {"eps", s.eps},
                                        {"min_std", s.min_std},
                                        {"clip", s.clip},
                                        {"weights", weights},
                                        {"stat_tracking", !o.stat_tracking.empty()}}
                     .dump();
  for (double e : res.edge) adv.edge.push_back(static_cast<float>(e));
  const auto health = check_health(o, ctx, in, rewards, s, adv.edge);
  if (t.advantages) log::info(in.file.name + ": replacing its /advantages (" + t.advantages->method + ")");
  t.advantages = adv;

  // The state file is prepared first and published after the output, so a failed run
  // leaves both as they were.
  std::unique_ptr<AtomicOutput> state;
  if (!o.stat_tracking.empty()) {
    state = std::make_unique<AtomicOutput>(o.stat_tracking, /*force=*/true, ctx.tool, "JSON");
    write_text(*state, stats_json(stats));
  }
  const auto bytes = save_trajectory(output, t, ctx, {in.record()}, format::WriteOptions{o.zstd_level}, "{}",
                                     in.file.file.get());
  if (state) state->commit();
  print_summary(o, ctx, output, res, s, bytes, health,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

cli::ToolSpec advantage_spec() {
  cli::ToolSpec spec;
  spec.name = "advantage";
  spec.summary = "Compute per-edge advantages of a scored trajectory file (tree, leaf or sibling rule)";
  spec.footer = "Example: advantage --method tree scored.h5 -o advantaged.h5; see advantage(1).";
  spec.common.output = true;
  return cli::make_tool<AdvantageOptions>(spec, add_advantage_options, validate, run_advantage);
}

}  // namespace treerpo::tools
