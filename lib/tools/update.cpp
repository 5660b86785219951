// update.cpp -- the update stage: GRPO / LayerTuning-RL on advantage-bearing trajectory files,
// or SFT (flow matching) on data set files; data parallel over c10d when launched by torchrun
// or srun.
#include "tools/update.hpp"

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "advantage/health.hpp"
#include "cli/choice.hpp"
#include "cli/summary.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/signals.hpp"
#include "core/text.hpp"
#include "format/dataset_file.hpp"
#include "format/trajectory_io.hpp"
#include "tools/policy_options.hpp"
#include "tools/stage_io.hpp"
#include "training/distributed.hpp"
#include "training/grpo.hpp"
#include "training/sft.hpp"

namespace treerpo::tools {
namespace {
// Makes the --trainable parameters trainable; a TorchScript policy without --trainable trains
// every weight of the archive, which is rarely meant (an SD3 transformer has billions).
void set_trainable(model::Policy& policy, const std::string& regex, const cli::Context& ctx) {
  policy.set_trainable(regex);
  if (policy.kind() == "torchscript" && !ctx.given("--trainable"))
    log::warning("no --trainable: every parameter of the TorchScript policy is trained (select adapters with, "
                 "e.g., --trainable lora_)");
}

// SFT-only and RL-only options: given with the other kind of objective they are refused.
const std::vector<std::string> kSftOnly{"--steps", "--batch-size", "--lr-schedule", "--warmup", "--cond-dropout",
                                        "--timestep-sampling", "--ema"};
const std::vector<std::string> kRlOnly{"--minibatch", "--epochs", "--clip-low", "--clip-high", "--eta", "--lambda",
                                       "--lambda-schedule", "--lambda-iterations", "--sft-target", "--sft-data",
                                       "--sft-batch", "--layer-weights", "--no-advantage-weighting", "--iteration",
                                       "--kl-weight", "--reference", "--replay-tolerance", "--on-mismatch",
                                       "--max-batch", "--dist-timeout", "--train-uncond", "--sft-velocity",
                                       "--strict-health", "--nft-beta", "--nft-timesteps",
                                       "--nft-scale"};

// The inputs, opened once: data set files or trajectory files, never a mix.
struct Inputs {
  std::vector<format::Dataset> datasets;
  std::vector<LoadedTrajectory> trajectories;
  std::vector<cli::InputRecord> records;
};

Inputs open_inputs(const std::vector<std::string>& paths) {
  Inputs in;
  for (const auto& path : paths) {
    auto file = h5::open_input(path);
    const auto format = h5::attr_string(file.file.get(), "treerpo_format", file.name + ": /");
    if (!format) throw DataError(file.name + ": not a treerpo file (no treerpo_format attribute on /)");
    if (*format == format::kDatasetFormatName) {
      in.records.push_back({file.name, file.digest()});
      in.datasets.push_back(format::read_dataset(file));
    } else if (*format == format::kFormatName) {
      in.trajectories.push_back(load_trajectory(std::move(file)));
      in.records.push_back(in.trajectories.back().record());
    } else {
      throw DataError(file.name + ": / attribute treerpo_format is '" + *format +
                      "', expected 'trajectory' (RL) or 'dataset' (SFT)");
    }
  }
  if (!in.datasets.empty() && !in.trajectories.empty())
    throw UsageError("inputs mix data set files and trajectory files: SFT reads the former, RL the latter");
  return in;
}

// Concatenates data set files (same image size).
format::Dataset concat_datasets(std::vector<format::Dataset> parts, const std::vector<std::string>& names) {
  format::Dataset all;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    auto& d = parts[i];
    if (!all.images.shape.empty() &&
        !std::equal(d.images.shape.begin() + 1, d.images.shape.end(), all.images.shape.begin() + 1))
      throw DataError(names[i] + ": /images: image size differs from " + names[0]);
    const auto offset = static_cast<std::int64_t>(all.prompts.text.size());
    all.prompts.text.insert(all.prompts.text.end(), d.prompts.text.begin(), d.prompts.text.end());
    for (auto id : d.prompts.id) all.prompts.id.push_back(id + offset);
    if (all.images.shape.empty()) all.images.shape = d.images.shape;
    else all.images.shape[0] += d.images.shape[0];
    all.images.data.insert(all.images.data.end(), d.images.data.begin(), d.images.data.end());
  }
  if (all.prompts.text.empty()) throw DataError(names[0] + ": no samples");
  return all;
}

// Metrics lines go to a file, stderr, or nowhere.
class MetricsSink {
 public:
  MetricsSink(const std::string& path, bool enabled) {
    if (!enabled || path.empty()) return;
    if (path == "-") { to_stderr_ = true; return; }
    file_ = std::make_unique<std::ofstream>(path);
    if (!*file_) throw CreateError(with_errno(path + ": cannot create metrics file", errno));
  }
  void write(const nlohmann::ordered_json& j) {
    const auto line = j.dump();
    if (to_stderr_) std::fprintf(stderr, "%s\n", line.c_str());
    if (file_) *file_ << line << "\n" << std::flush;
  }

 private:
  bool to_stderr_ = false;
  std::unique_ptr<std::ofstream> file_;
};

// Reward statistics of the inputs, per reward name (mean, std, min, max over every leaf).
nlohmann::ordered_json reward_statistics(const std::vector<LoadedTrajectory>& inputs) {
  std::map<std::string, std::vector<double>> values;
  for (const auto& in : inputs)
    for (const auto& r : in.trajectory.rewards)
      values[r.name].insert(values[r.name].end(), r.values.begin(), r.values.end());
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [name, v] : values) {
    double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
    for (double x : v) { sum += x; sq += x * x; lo = std::min(lo, x); hi = std::max(hi, x); }
    const double n = static_cast<double>(v.size()), mean = sum / n;
    out[name] = {{"mean", mean}, {"std", std::sqrt(std::max(0.0, sq / n - mean * mean))}, {"min", lo}, {"max", hi},
                 {"leaves", v.size()}};
  }
  return out;
}

std::string digest_list(const std::vector<cli::InputRecord>& records) {
  std::string all;
  for (const auto& r : records) all += r.digest + " ";
  return all;
}

// The health warnings of one update: printed once each (by the writing rank), recorded in the
// metrics summary and the checkpoint's provenance, and refused with --strict-health.
class Health {
 public:
  Health(cli::Context& ctx, bool strict, bool writer) : ctx_(ctx), strict_(strict), writer_(writer) {}
  // `where` names the file (or the minibatch) the finding is about.
  void report(const std::string& check, const std::string& where, const std::string& message) {
    for (const auto& [c, w, m] : seen_)
      if (c == check && w == where) return;  // once per check and place
    seen_.emplace_back(check, where, message);
    ctx_.health.push_back(check + ": " + where + ": " + message);
    if (strict_) throw DataError(where + ": health check failed (--strict-health): " + message);
    if (writer_) log::warning(where + ": " + message);
  }
  nlohmann::ordered_json json() const {
    auto out = nlohmann::ordered_json::array();
    for (const auto& [c, w, m] : seen_) out.push_back({{"check", c}, {"where", w}, {"message", m}});
    return out;
  }

 private:
  cli::Context& ctx_;
  bool strict_, writer_;
  std::vector<std::tuple<std::string, std::string, std::string>> seen_;
};

// Refuses non-finite rewards (they would poison the best leaf and the statistics), naming the
// file and the dataset, and checks each input's data: reward spread, advantages, collapse.
void check_inputs(const std::vector<LoadedTrajectory>& inputs, Health& health) {
  for (const auto& in : inputs) {
    const auto& t = in.trajectory;
    for (const auto& r : t.rewards)
      for (std::size_t g = 0; g < r.values.size(); ++g)
        if (!std::isfinite(r.values[g]))
          throw DataError(in.file.name + ": /rewards/" + r.name + ": leaf " + std::to_string(g) + " is " +
                          std::to_string(r.values[g]) + " (a finite reward expected)");
    // The rewards and min std that `advantage` used, as its settings record them.
    advantage::HealthThresholds th;
    std::set<std::string> used;
    if (t.advantages) {
      const auto j = nlohmann::json::parse(t.advantages->settings, nullptr, false);
      if (j.is_object() && j.contains("min_std") && j["min_std"].is_number()) th.min_std = j["min_std"].get<double>();
      if (j.is_object() && j.contains("weights") && j["weights"].is_object())
        for (const auto& [name, w] : j["weights"].items()) used.insert(name);
    }
    std::vector<advantage::HealthReward> rewards;
    for (const auto& r : t.rewards)
      if (used.empty() || used.count(r.name))
        rewards.push_back({r.name, std::vector<double>(r.values.begin(), r.values.end())});
    const std::vector<float> none;
    for (const auto& h : advantage::data_health(t.leaves.prompt, t.prompts.text.size(), rewards,
                                                t.advantages ? t.advantages->edge : none, th))
      health.report(h.check, in.file.name, h.message);
  }
}

// Where a checkpoint's training stands: its "training" record and optimizer state. Empty
// (objective "") for weights without one (a TorchScript policy, a --weights-only file).
struct ResumePoint {
  std::string objective;
  std::int64_t step = 0;
  std::uint64_t seed = 0;
  std::int64_t iteration = 0;
  std::string inputs;  ///< digests of the update's inputs (RL)
  std::int64_t minibatches_done = 0, minibatches_total = 0;
  double ema = 0;      ///< SFT's moving-average decay
  std::map<std::string, torch::Tensor> tensors;
};

ResumePoint read_resume_point(const model::Policy& policy, const std::string& path) {
  ResumePoint p;
  const auto it = policy.metadata().find("training");
  if (it == policy.metadata().end()) return p;
  const auto t = nlohmann::json::parse(it->second, nullptr, false);
  if (!t.is_object()) return p;
  p.objective = t.value("objective", "");
  p.step = t.value("step", std::int64_t{0});
  const std::string seed = t.value("seed", std::string("0"));
  try {
    std::size_t used = 0;
    p.seed = std::stoull(seed, &used);
    if (used != seed.size() || seed.find('-') != std::string::npos) throw std::invalid_argument("seed");
  } catch (const std::exception&) {
    throw DataError(path + ": metadata training: seed '" + seed + "' is not an unsigned 64-bit decimal");
  }
  p.iteration = t.value("iteration", std::int64_t{0});
  p.inputs = t.value("inputs", "");
  p.minibatches_done = t.value("minibatches_done", std::int64_t{0});
  p.minibatches_total = t.value("minibatches_total", std::int64_t{0});
  p.ema = t.value("ema", 0.0);
  p.tensors = policy.extras();
  return p;
}

// Writes the trained policy: resumable (optimizer state and the training record) or, with
// --weights-only, the weights alone (SFT: the moving average when one is kept); then --export.
void write_checkpoint(model::Policy& policy, const UpdateOptions& o, const cli::Context& ctx, const std::string& output,
                      const std::vector<cli::InputRecord>& records, const training::OptimizerState& state,
                      const nlohmann::json& training, const std::string& timings_json, bool moving_average) {
  signals::AllowPublish publish;  // the checkpoint a stop asks for must be written
  const auto provenance = ctx.provenance_record(records, timings_json);
  if (o.weights_only && moving_average) training::load_moving_average(policy, state);
  if (o.weights_only) policy.save(output, ctx.force, {}, {{"provenance", provenance}});
  else policy.save(output, ctx.force, state.tensors, {{"provenance", provenance}, {"training", training.dump()}});
  if (!o.export_path.empty()) policy.export_safetensors(o.export_path, /*trainable_only=*/true, ctx.force);
}

// The rules between RL options that hold once the objective is known (it may come from the
// inputs' rollout mode). \throws UsageError
void check_rl_options(const UpdateOptions& o, training::RlObjective objective, const cli::Given& given) {
  using training::SftTarget;
  const auto& c = o.rl;
  const std::string name = training::objective_name(objective);
  for (const auto* opt : {"--lambda", "--lambda-schedule", "--lambda-iterations", "--sft-target", "--sft-data",
                          "--sft-batch", "--layer-weights", "--no-advantage-weighting", "--sft-velocity"})
    if (objective != training::RlObjective::layertuning && given(opt))
      throw UsageError(std::string(opt) + " applies to --objective layertuning (the objective is " + name + ")");
  // NFT trains on the leaves alone: no ratio, no clipping, no edges to replay.
  for (const auto* opt : {"--clip-low", "--clip-high", "--eta", "--replay-tolerance", "--train-uncond"})
    if (objective == training::RlObjective::nft && given(opt))
      throw UsageError(std::string(opt) + " applies to the edge objectives grpo and layertuning (the objective is nft)");
  for (const auto* opt : {"--nft-beta", "--nft-timesteps", "--nft-scale"})
    if (objective != training::RlObjective::nft && given(opt))
      throw UsageError(std::string(opt) + " applies to --objective nft (the objective is " + name + ")");
  const std::string target = training::sft_target_name(c.sft_target);
  if (!o.sft_data.empty() && c.sft_target != SftTarget::dataset)
    throw UsageError("--sft-data is the data of --sft-target dataset (the target is " + target + ")");
  if (objective == training::RlObjective::layertuning && c.sft_target == SftTarget::dataset && o.sft_data.empty())
    throw UsageError("--sft-target dataset needs --sft-data FILE (a treerpo-shapes data set)");
  if (c.sft_target != SftTarget::dataset && given("--sft-batch"))
    throw UsageError("--sft-batch applies to --sft-target dataset (the target is " + target + ")");
  if (c.sft_target == SftTarget::dataset && (given("--layer-weights") || given("--no-advantage-weighting")))
    throw UsageError("--layer-weights and --no-advantage-weighting apply to the best-leaf and velocity targets");
  if (c.sft_target != SftTarget::best_leaf && given("--sft-velocity"))
    throw UsageError("--sft-velocity applies to --sft-target best-leaf (the target is " + target + ")");
}

// The files must come from these weights: the latent shape always, the model digest unless
// the update resumes (the weights moved on).
void check_rollout_sources(const UpdateOptions& o, const Inputs& in, const model::Policy& policy, bool resuming,
                           bool writer) {
  const std::string digest = policy.digest();
  for (const auto& t : in.trajectories) {
    if (t.trajectory.rollout.latent_shape != policy.latent_shape())
      throw DataError(t.file.name + ": /rollout latent_shape " + shape_text(t.trajectory.rollout.latent_shape) +
                      " differs from the policy's " + shape_text(policy.latent_shape()));
    if (resuming || t.trajectory.rollout.model_digest == digest) continue;
    // The digest covers the dtype: a rollout in bfloat16 updated in float32 differs by that alone.
    const auto settings = nlohmann::json::parse(t.trajectory.rollout.settings, nullptr, false);
    const std::string sampled_dtype = settings.is_object() && settings.contains("policy_dtype") &&
                                              settings["policy_dtype"].is_string()
                                          ? settings["policy_dtype"].get<std::string>()
                                          : "";
    const std::string message =
        !sampled_dtype.empty() && sampled_dtype != o.policy.dtype
            ? t.file.name + ": the rollout ran the policy in " + sampled_dtype + " and this update runs it in " +
                  o.policy.dtype + " (give --dtype " + sampled_dtype + ")"
            : t.file.name + ": /rollout model_digest " + t.trajectory.rollout.model_digest + " is not the policy's " +
                  digest + ": the trajectories were sampled from other weights";
    if (o.on_mismatch == OnMismatch::error) throw DataError(message + " (--on-mismatch warn trains on them anyway)");
    if (writer) log::warning(message);
  }
}

// One minibatch's metrics line; per loss term, the norm of its own gradient and its share
// <g_term, g> / |g|^2.
nlohmann::ordered_json minibatch_json(const training::MinibatchMetrics& m) {
  nlohmann::ordered_json j{{"minibatch", m.minibatch},   {"epoch", m.epoch},
                           {"step", m.step},             {"edges", m.edges},
                           {"loss", m.loss},             {"loss_grpo", m.loss_grpo},
                           {"loss_sft", m.loss_sft},     {"loss_kl", m.loss_kl},
                           {"lambda", m.lambda},         {"ratio_dev", m.ratio_dev},
                           {"max_ratio_dev", m.max_ratio_dev}, {"clip_fraction", m.clip_fraction},
                           {"approx_kl", m.approx_kl},   {"sft_items", m.sft_items},
                           {"seconds", m.seconds}};
  j["outside_fraction"] = m.outside_fraction;
  if (m.grad_norm != -1) {
    j["grad_norm"] = m.grad_norm;
    const std::pair<const char*, std::pair<double, double>> terms[] = {
        {"grpo", {m.grad_norm_grpo, m.grad_share_grpo}},
        {"sft", {m.grad_norm_sft, m.grad_share_sft}},
        {"kl", {m.grad_norm_kl, m.grad_share_kl}}};
    for (const auto& [name, v] : terms)
      if (v.first >= 0 || std::isnan(v.first)) {
        j[std::string("grad_norm_") + name] = v.first;
        j[std::string("grad_share_") + name] = v.second;
      }
  }
  return j;
}

// Health at a minibatch: the ratio past its clip range on most edges of a fresh update's first
// minibatch, and a gradient that is zero or not finite at an optimizer step.
void check_minibatch(const training::MinibatchMetrics& m, bool fresh, Health& health, const std::string& inputs_name) {
  if (m.minibatch == 1 && fresh && m.outside_fraction > 0.5)
    health.report("ratio-past-clip", inputs_name,
                  "the ratio is past its clip range on " + std::to_string(m.outside_fraction * 100.0).substr(0, 5) +
                      "% of the edges at the first minibatch (mean |rho - 1| " + std::to_string(m.ratio_dev) +
                      "): the trajectories are stale or the clip range is too narrow for the log-probability "
                      "reduction");
  if (m.grad_norm != -1 && !std::isfinite(m.grad_norm))
    health.report("nonfinite-grad-norm", inputs_name,
                  "the gradient norm is not finite at optimizer step " + std::to_string(m.step));
  else if (m.grad_norm == 0)
    health.report("zero-grad-norm", inputs_name,
                  "the gradient norm is zero at optimizer step " + std::to_string(m.step) + ": nothing trains");
}

// The update's summary: means over its minibatches weighted by edges, and per loss term the
// means over the optimizer steps (which term drives the update).
nlohmann::ordered_json rl_summary(const std::vector<training::MinibatchMetrics>& seen) {
  double edges = 0, items = 0, units = 0, loss = 0, grpo = 0, sft = 0, kl = 0, dev = 0, clip = 0, akl = 0;
  for (const auto& m : seen) {
    // Means are weighted by the minibatch's edges, or by its items where it has none (NFT).
    const double e = static_cast<double>(m.edges > 0 ? m.edges : m.sft_items);
    edges += static_cast<double>(m.edges);
    items += static_cast<double>(m.sft_items);
    units += e;
    loss += m.loss * e; grpo += m.loss_grpo * e; sft += m.loss_sft * e; kl += m.loss_kl * e;
    dev += m.ratio_dev * e; clip += m.clip_fraction * e; akl += m.approx_kl * e;
  }
  const double ne = std::max(units, 1.0);
  nlohmann::ordered_json term_grads = nlohmann::ordered_json::object();
  for (const std::string name : {"grpo", "sft", "kl"}) {
    double norm = 0, share = 0, steps = 0;
    for (const auto& m : seen) {
      if (m.grad_norm == -1) continue;
      const double v = name == "grpo" ? m.grad_norm_grpo : name == "sft" ? m.grad_norm_sft : m.grad_norm_kl;
      const double s = name == "grpo" ? m.grad_share_grpo : name == "sft" ? m.grad_share_sft : m.grad_share_kl;
      if (v == -1) continue;
      norm += v;
      share += s;
      steps += 1;
    }
    if (steps > 0) term_grads[name] = {{"grad_norm", norm / steps}, {"grad_share", share / steps}};
  }
  return {{"edges", static_cast<std::int64_t>(edges)},
          {"sft_items", static_cast<std::int64_t>(items)},
          {"loss", loss / ne},
          {"loss_grpo", grpo / ne},
          {"loss_sft", sft / ne},
          {"loss_kl", kl / ne},
          {"ratio_dev", dev / ne},
          {"clip_fraction", clip / ne},
          {"approx_kl", akl / ne},
          {"grad_norm", seen.empty() ? 0.0 : seen.back().grad_norm},
          {"terms", term_grads}};
}

// The objective: the one given, else layertuning for tree files and grpo for the baselines'.
training::RlObjective rl_objective(const UpdateOptions& o, const format::Trajectory& first) {
  if (o.objective == Objective::grpo) return training::RlObjective::grpo;
  if (o.objective == Objective::layertuning) return training::RlObjective::layertuning;
  if (o.objective == Objective::nft) return training::RlObjective::nft;
  return first.rollout.mode == "tree" ? training::RlObjective::layertuning : training::RlObjective::grpo;
}

// The RL configuration of this update: objective, seed and iteration (from the resume point, the
// options or the inputs), lambda at the iteration.
training::RlConfig resolve_rl_config(const UpdateOptions& o, cli::Context& ctx, const format::Trajectory& first,
                                     const ResumePoint& resume, bool mid_update) {
  training::RlConfig c = o.rl;
  c.grad_accum = o.sft.grad_accum;
  c.until = o.sft.until;
  c.grad_clip = o.sft.grad_clip;
  c.adamw = training::AdamWSettings{o.sft.lr, o.sft.weight_decay, o.sft.beta1, o.sft.beta2};
  c.objective = rl_objective(o, first);
  std::int64_t iteration = o.iteration;
  if (mid_update) {
    // The order of the edges and the SFT noise are keyed by seed and iteration: a resume under
    // other keys would train some edges twice and others never.
    if (ctx.seed_given && ctx.seed != resume.seed)
      throw UsageError(o.policy.path + ": the checkpoint stopped mid-update with seed " + std::to_string(resume.seed) +
                       "; resume with that seed (or none)");
    if (o.iteration >= 0 && o.iteration != resume.iteration)
      throw UsageError(o.policy.path + ": the checkpoint stopped mid-update at iteration " +
                       std::to_string(resume.iteration) + "; resume with that --iteration (or none)");
    if (!ctx.seed_given) ctx.adopt_seed(resume.seed, "the checkpoint, stopped mid-update");
    iteration = resume.iteration;
  } else if (!ctx.seed_given) {
    // Without --seed the rollout's seed keys the minibatch order: a loop run with one seed is
    // reproducible end to end.
    ctx.adopt_seed(first.rollout.seed, "the rollout");
  }
  c.seed = ctx.seed;
  c.iteration = iteration >= 0 ? iteration : first.rollout.iteration;
  c.lambda = c.objective == training::RlObjective::layertuning
                 ? training::lambda_at(o.lambda_schedule, c.lambda, o.lambda_iterations, c.iteration)
                 : 0.0;
  return c;
}

// The replay check: the first minibatch's recomputed log-probabilities must reproduce the stored
// ones (max |rho - 1| within --replay-tolerance). \throws DataError (unless --on-mismatch warn)
void check_replay(const UpdateOptions& o, double max_dev, const std::string& inputs_name, bool writer) {
  if (max_dev <= o.replay_tolerance) return;
  const std::string message =
      inputs_name + ": /nodes/log_prob: replay check failed: recomputed log-probabilities give max |rho - 1| = " +
      std::to_string(max_dev) + " at the first minibatch (tolerance " + std::to_string(o.replay_tolerance) +
      "): the sampler or the weights differ from the rollout's";
  if (o.on_mismatch == OnMismatch::error) throw DataError(message + " (--on-mismatch warn trains anyway)");
  if (writer) log::warning(message);
}

// The frozen reference policy of the KL term (--reference, loaded like --policy).
std::unique_ptr<model::Policy> load_reference(const UpdateOptions& o, cli::Context& ctx) {
  PolicyCliOptions ro = o.policy;
  ro.path = o.reference;
  auto reference = load_policy(ro, ctx);
  for (const auto& [name, p] : reference->named_parameters()) p.set_requires_grad(false);
  return reference;
}

// Minibatches of this update (epochs x minibatches per epoch); a run resumed mid-update must
// make as many as the interrupted one. \throws UsageError
std::int64_t count_minibatches(const UpdateOptions& o, const training::RlConfig& c,
                               const std::vector<training::RlInput>& inputs, const ResumePoint* mid_update) {
  const auto units = training::rl_units(inputs, c);  // edges, or NFT items
  const auto total = (units + c.minibatch - 1) / c.minibatch * c.epochs;
  if (mid_update && mid_update->minibatches_total != total)
    throw UsageError(o.policy.path + ": the checkpoint stopped at minibatch " +
                     std::to_string(mid_update->minibatches_done) + " of " +
                     std::to_string(mid_update->minibatches_total) + ", but these options make " +
                     std::to_string(total) +
                     " minibatches: resume with the --minibatch and --epochs of the interrupted run");
  return total;
}

// The head of the update's summary line: what ran, and the means over its minibatches.
nlohmann::ordered_json update_summary(const training::RlConfig& c, const training::RlResult& result,
                                      const nlohmann::ordered_json& means, double replay_dev) {
  nlohmann::ordered_json summary{{"update", true},
                                 {"objective", training::objective_name(c.objective)},
                                 {"iteration", c.iteration},
                                 {"step", result.state.step},
                                 {"minibatches", result.minibatches_done},
                                 {"minibatches_total", result.minibatches_total}};
  for (const auto* key : {"edges", "sft_items", "loss", "loss_grpo", "loss_sft", "loss_kl"}) summary[key] = means[key];
  summary["lambda"] = c.lambda;
  summary["ratio_dev"] = means["ratio_dev"];
  summary["replay_max_ratio_dev"] = replay_dev;
  for (const auto* key : {"clip_fraction", "approx_kl", "grad_norm", "terms"}) summary[key] = means[key];
  return summary;
}

// The RL update of trajectory files.
int run_rl(const UpdateOptions& o, cli::Context& ctx, const std::string& output, Inputs& in) {
  const auto launch = training::launch_from_environment();
  const bool writer = launch.rank == 0;
  const auto& first = in.trajectories.front().trajectory;
  check_rl_options(o, rl_objective(o, first), ctx.given);
  if (o.rl.kl_weight > 0 && o.reference.empty()) throw UsageError("--kl-weight needs --reference CHECKPOINT");
  if (o.rl.kl_weight == 0 && !o.reference.empty()) throw UsageError("--reference is used only with --kl-weight > 0");
  if (!ctx.force && access(output.c_str(), F_OK) == 0)
    throw UsageError(output + ": output exists (use --force to overwrite)");
  auto policy = load_policy(o.policy, ctx);
  set_trainable(*policy, o.trainable, ctx);

  // Optimizer state and, mid-update, the position from the checkpoint.
  const std::string input_digests = digest_list(in.records);
  const auto resume = read_resume_point(*policy, o.policy.path);
  training::OptimizerState state;
  const bool rl_checkpoint = resume.objective == "grpo" || resume.objective == "layertuning" || resume.objective == "nft";
  if (rl_checkpoint) state = {resume.step, resume.tensors};
  const bool mid_update =
      rl_checkpoint && resume.inputs == input_digests && resume.minibatches_done < resume.minibatches_total;
  const std::int64_t start_minibatch = mid_update ? resume.minibatches_done : 0;
  if (mid_update && writer)
    log::info("resuming this update at minibatch " + std::to_string(start_minibatch) + " of " +
              std::to_string(resume.minibatches_total) + " (optimizer step " + std::to_string(state.step) + ")");
  const auto c = resolve_rl_config(o, ctx, first, resume, mid_update);

  std::vector<training::RlInput> rl_inputs;
  for (const auto& t : in.trajectories) rl_inputs.push_back({t.file.name, &t.trajectory});
  check_rollout_sources(o, in, *policy, mid_update, writer);
  // Health of the inputs' signal, before any training: warnings (or, strict, a refusal).
  Health health(ctx, o.strict_health, writer);
  const std::string inputs_name = in.records.front().path + (in.records.size() > 1 ? " (and the other inputs)" : "");
  check_inputs(in.trajectories, health);

  const auto reference = c.kl_weight > 0 ? load_reference(o, ctx) : nullptr;
  std::optional<format::Dataset> sft_data;
  if (!o.sft_data.empty()) sft_data = format::read_dataset(o.sft_data);

  training::Communicator comm(launch, std::chrono::seconds(o.dist_timeout));
  if (launch.world > 1 && writer)
    log::info("data parallel: " + std::to_string(launch.world) + " ranks (" + launch.launcher + ", Gloo at " +
              launch.master_addr + ":" + std::to_string(launch.master_port) + ")");
  const auto minibatches = count_minibatches(o, c, rl_inputs, mid_update ? &resume : nullptr);
  MetricsSink metrics(o.metrics, writer);
  const auto rewards = reward_statistics(in.trajectories);
  cli::Progress progress(ctx, "minibatches", static_cast<std::uint64_t>(minibatches));
  double replay_dev = -1;
  std::vector<training::MinibatchMetrics> seen;
  const auto start = std::chrono::steady_clock::now();
  const auto result = training::train_rl(
      *policy, reference.get(), rl_inputs, sft_data ? &*sft_data : nullptr, c, state, start_minibatch, comm,
      [&](double max_dev) {
        replay_dev = max_dev;
        check_replay(o, max_dev, inputs_name, writer);
      },
      [&](const training::MinibatchMetrics& m) {
        seen.push_back(m);
        check_minibatch(m, start_minibatch == 0, health, inputs_name);
        metrics.write(minibatch_json(m));
        progress.update(static_cast<std::uint64_t>(m.minibatch));
        return signals::pending() == 0;
      });
  progress.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const auto means = rl_summary(seen);
  const double edges = means["edges"].get<double>();
  const double edges_per_s = edges / std::max(seconds, 1e-9);
  auto summary = update_summary(c, result, means, replay_dev);
  summary["health"] = health.json();
  summary["edges_per_s"] = edges_per_s;
  summary["seconds"] = seconds;
  summary["ranks"] = launch.world;
  summary["rewards"] = rewards;
  metrics.write(summary);

  const nlohmann::json training{{"objective", training::objective_name(c.objective)},
                                {"step", result.state.step},
                                {"seed", std::to_string(ctx.seed)},
                                {"iteration", c.iteration},
                                {"inputs", input_digests},
                                {"minibatches_done", result.minibatches_done},
                                {"minibatches_total", result.minibatches_total}};
  if (writer)
    write_checkpoint(*policy, o, ctx, output, in.records, result.state, training,
                     nlohmann::json{{"update", seconds}}.dump(), /*moving_average=*/false);
  comm.barrier();  // every rank returns once the checkpoint exists
  if (writer) {
    const std::string minibatches = std::to_string(result.minibatches_done - start_minibatch) + " minibatches";
    // NFT has items rather than edges, and no ratio, clipping or lambda to report.
    const std::string what =
        c.objective == training::RlObjective::nft
            ? std::to_string(means["sft_items"].get<std::int64_t>()) + " leaf items in " + minibatches + ", loss " +
                  std::to_string(means["loss_sft"].get<double>())
            : std::to_string(static_cast<std::int64_t>(edges)) + " edges in " + minibatches + " (" +
                  std::to_string(edges_per_s) + " edges/s), mean |rho - 1| " +
                  std::to_string(means["ratio_dev"].get<double>()) + ", clipped " +
                  std::to_string(means["clip_fraction"].get<double>()) + ", lambda " + std::to_string(c.lambda);
    log::summary(std::string(training::objective_name(c.objective)) + ": " + what + ": wrote " + output);
    if (ctx.json) cli::print_json_summary(ctx, output, summary);
  }
  if (const int signo = signals::pending())
    throw Interrupted(signo, "resumable checkpoint written to " + output + " at minibatch " +
                                 std::to_string(result.minibatches_done));
  return 0;
}

// SFT on data set files.
int run_sft(const UpdateOptions& o, cli::Context& ctx, const std::string& output, Inputs& in) {
  const auto launch = training::launch_from_environment();
  if (launch.world > 1)
    throw UsageError("SFT runs in one process, but this one is rank " + std::to_string(launch.rank) + " of " +
                     std::to_string(launch.world) + " (" + launch.launcher + "): launch it once");
  auto policy = load_policy(o.policy, ctx);
  set_trainable(*policy, o.trainable, ctx);
  auto cfg = o.sft;
  training::OptimizerState state;
  // Resume: optimizer moments, step and (without --seed) the seed come from the checkpoint.
  const auto resume = read_resume_point(*policy, o.policy.path);
  if (resume.objective == "sft") {
    state = {resume.step, resume.tensors};
    if (!ctx.seed_given) ctx.adopt_seed(resume.seed, "the checkpoint");
    if (!ctx.given("--ema")) cfg.ema_decay = resume.ema;
    log::info("resuming SFT at step " + std::to_string(state.step));
  } else if (!ctx.seed_given) {
    ctx.adopt_seed(cli::random_seed(), "drawn at random");
  }
  cfg.seed = ctx.seed;
  const auto data = concat_datasets(std::move(in.datasets), o.inputs);
  MetricsSink metrics(o.metrics, true);
  const std::int64_t end = cfg.until < 0 ? cfg.steps : std::min(cfg.until, cfg.steps);
  cli::Progress progress(ctx, "steps", static_cast<std::uint64_t>(std::max<std::int64_t>(end, 0)));
  double last_loss = 0;
  state = training::train_sft(*policy, cfg, data.prompts, data.images, state, [&](const training::StepMetrics& m) {
    last_loss = m.loss;
    metrics.write({{"step", m.step}, {"loss", m.loss}, {"lr", m.lr}, {"grad_norm", m.grad_norm},
                   {"samples_per_s", m.samples_per_s}});
    progress.update(static_cast<std::uint64_t>(m.step));
    return signals::pending() == 0;  // a stop request: finish this step, then checkpoint
  });
  progress.finish();
  const nlohmann::json training{{"objective", "sft"}, {"step", state.step}, {"seed", std::to_string(ctx.seed)},
                                {"steps", cfg.steps}, {"ema", cfg.ema_decay}};
  write_checkpoint(*policy, o, ctx, output, in.records, state, training, "{}", cfg.ema_decay > 0);
  log::summary("step " + std::to_string(state.step) + "/" + std::to_string(cfg.steps) + ", loss " +
               std::to_string(last_loss) + ": wrote " + output);
  if (ctx.json) cli::print_json_summary(ctx, output, {{"step", state.step}, {"loss", last_loss}});
  // Stopped early by a signal: exit 128+N, saying that the checkpoint is there.
  if (const int signo = signals::pending())
    throw Interrupted(signo, "resumable checkpoint written to " + output + " at step " + std::to_string(state.step));
  return 0;
}
}  // namespace

void add_update_options(CLI::App& app, UpdateOptions& o) {
  app.add_option("inputs", o.inputs, "Trajectory files with advantages (RL) or data set files (SFT); - = stdin")
      ->required();
  add_policy_options(app, o.policy, /*required=*/true);
  cli::add_choice(app, "--objective", o.objective,
                  {{"grpo", Objective::grpo}, {"layertuning", Objective::layertuning}, {"nft", Objective::nft},
                   {"sft", Objective::sft}},
                  "grpo, layertuning (grpo + weighted SFT on the best leaves), nft (DiffusionNFT: negative-aware "
                  "flow matching on all leaves) or sft; default: layertuning for tree files, grpo for "
                  "window/independent files, sft for data sets");
  app.add_option("--trainable", o.trainable, "Train the parameters whose names match this regular expression")
      ->capture_default_str();
  auto& c = o.sft;
  auto& r = o.rl;
  // Shared by both kinds of objective.
  app.add_option("--until", c.until, "Stop after this optimizer step (SFT) or minibatch of the update (RL) and "
                 "write a resumable checkpoint");
  app.add_option("--grad-accum", c.grad_accum, "Micro-batches (SFT) or minibatches (RL) per optimizer step")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", c.lr, "Learning rate (AdamW; peak of the SFT schedule)")->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "AdamW weight decay")->capture_default_str();
  app.add_option("--grad-clip", c.grad_clip, "Clip the global gradient norm; 0 = off")->capture_default_str();
  // SFT.
  app.add_option("--steps", c.steps, "SFT: optimizer steps of the schedule (a resumed run stops at this step)")
      ->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "SFT: samples per micro-batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cli::add_choice(app, "--lr-schedule", c.schedule,
                  {{"constant", training::LrSchedule::constant}, {"linear", training::LrSchedule::linear},
                   {"cosine", training::LrSchedule::cosine}},
                  "SFT: constant, linear or cosine decay after warmup");
  app.add_option("--warmup", c.warmup, "SFT: linear warmup steps")->capture_default_str();
  app.add_option("--cond-dropout", c.cond_dropout, "SFT: probability of training on the null prompt (for guidance)")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  cli::add_choice(app, "--timestep-sampling", c.timestep_sampling,
                  {{"uniform", training::TimestepSampling::uniform},
                   {"logit-normal", training::TimestepSampling::logit_normal}},
                  "SFT: uniform or logit-normal sigma");
  app.add_option("--ema", c.ema_decay, "SFT: keep a moving average of the weights with this decay (e.g. 0.999) in "
                 "the checkpoint; --weights-only writes the average; 0 = none")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  // RL.
  app.add_option("--minibatch", r.minibatch, "RL: trainable edges (nft: leaf items) per minibatch (over all ranks)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--epochs", r.epochs, "RL: passes over the edges of the inputs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--clip-low", r.clip_low, "RL: e_low of the clipping bounds 1 - e_low g")->capture_default_str();
  app.add_option("--clip-high", r.clip_high, "RL: e_high of the clipping bounds 1 + e_high g")->capture_default_str();
  app.add_option("--eta", r.eta, "RL: reward-conditioned clipping, g = clamp(exp(eta A), 0.5, 2); 0 = fixed bounds")
      ->capture_default_str();
  app.add_option("--lambda", r.lambda, "LayerTuning: lambda_0, the weight of the SFT term")->capture_default_str();
  cli::add_choice(app, "--lambda-schedule", o.lambda_schedule,
                  {{"constant", training::LambdaSchedule::constant}, {"linear", training::LambdaSchedule::linear},
                   {"cosine", training::LambdaSchedule::cosine}},
                  "LayerTuning: constant, linear (decay to 0 over --lambda-iterations) or cosine");
  app.add_option("--lambda-iterations", o.lambda_iterations, "LayerTuning: iterations of the lambda decay")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cli::add_choice(app, "--sft-target", r.sft_target,
                  {{"best-leaf", training::SftTarget::best_leaf}, {"velocity", training::SftTarget::velocity},
                   {"dataset", training::SftTarget::dataset}},
                  "LayerTuning: best-leaf (flow matching to the best leaf at every layer), velocity (the stored "
                  "velocities on its path) or dataset (pairs of --sft-data)");
  app.add_option("--sft-data", o.sft_data, "LayerTuning: data set file of the dataset target");
  app.add_option("--sft-batch", r.sft_batch, "LayerTuning: data set pairs per minibatch (dataset target)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--layer-weights", r.layer_weights, "LayerTuning: weight w_k per tree layer (W[,W...]); default all 1")
      ->delimiter(',');
  app.add_flag("!--no-advantage-weighting", r.advantage_weighting, "LayerTuning: do not weight the SFT term by the "
               "best leaf's normalised advantage");
  app.add_option("--nft-beta", r.nft_beta, "NFT: beta of the implicit policies v+- = v_old +- beta (v - v_old)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--nft-scale", r.nft_scale, "NFT: the advantage A at which the optimality r = (1 + A / S) / 2 "
                 "reaches 1 (clamped beyond)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--nft-timesteps", r.nft_timesteps, "NFT: noise levels each leaf is trained at, drawn from the "
                 "rollout's schedule")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--iteration", o.iteration, "RL: iteration j of the lambda schedule and the keys (default: the "
                 "inputs' /rollout iteration)");
  app.add_option("--kl-weight", r.kl_weight, "RL: beta_kl of a KL term to --reference (0 = off)")
      ->capture_default_str();
  app.add_option("--reference", o.reference, "RL: frozen reference checkpoint of the KL term");
  app.add_option("--replay-tolerance", o.replay_tolerance, "RL: largest |rho - 1| allowed at the first minibatch")
      ->capture_default_str();
  app.add_flag("--train-uncond", r.train_uncond, "RL with guidance: also train through the unconditional branch "
               "v_u of v_u + g (v_c - v_u) (default: detached, as Flow-GRPO)");
  cli::add_choice(app, "--sft-velocity", r.sft_velocity,
                  {{"conditional", training::SftVelocity::conditional}, {"guided", training::SftVelocity::guided}},
                  "LayerTuning, best-leaf target: regress the conditional velocity (default) or the guided one the "
                  "best leaf was sampled with");
  app.add_flag("--strict-health", o.strict_health, "RL: refuse (exit 65) instead of warning when a health check "
               "fails (see update(1), HEALTH CHECKS)");
  cli::add_choice(app, "--on-mismatch", o.on_mismatch, {{"error", OnMismatch::error}, {"warn", OnMismatch::warn}},
                  "RL: error or warn when the inputs' model digest or the replay check disagree with the policy");
  app.add_option("--max-batch", r.max_rows, "RL: model rows per forward pass (a guided edge takes two)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--dist-timeout", o.dist_timeout, "RL, several processes: seconds to wait for the other ranks")
      ->check(CLI::PositiveNumber)->capture_default_str();
  // Outputs.
  app.add_flag("--weights-only", o.weights_only, "Write the weights without optimizer state or step: a model to "
               "ship or to start new training from, not to resume");
  app.add_option("--export", o.export_path, "Also write the trained parameters alone as safetensors");
  app.add_option("--metrics", o.metrics, "Write JSON lines: one per optimizer step (SFT) or minibatch plus a "
                 "summary (RL); - = stderr");
}

void validate(const UpdateOptions&, const cli::Given&) {}  // the rules depend on the inputs' kind: run_update

int run_update(const UpdateOptions& o, cli::Context& ctx, const std::string& output) {
  if (output == "-") throw UsageError("give the new checkpoint a name with -o FILE");
  auto in = open_inputs(o.inputs);
  const bool rl = !in.trajectories.empty();
  if (rl && o.objective == Objective::sft)
    throw UsageError("--objective sft trains on data set files; " + in.records.front().path +
                     " is a trajectory file (use grpo, layertuning or nft)");
  if (!rl && o.objective != Objective::by_input && o.objective != Objective::sft)
    throw UsageError(std::string("--objective ") +
                     (o.objective == Objective::grpo ? "grpo" : o.objective == Objective::nft ? "nft" : "layertuning") +
                     " trains on trajectory files; " + in.records.front().path + " is a data set file");
  for (const auto& opt : rl ? kSftOnly : kRlOnly)
    if (ctx.given(opt))
      throw UsageError(opt + (rl ? " applies to SFT on data set files (these inputs are trajectories)"
                                 : " applies to RL on trajectory files (these inputs are data sets)"));
  return rl ? run_rl(o, ctx, output, in) : run_sft(o, ctx, output, in);
}

cli::ToolSpec update_spec() {
  cli::ToolSpec spec;
  spec.name = "update";
  spec.summary = "Train a policy: GRPO / LayerTuning-RL on scored trajectory files, or SFT on data set files";
  spec.footer = "Example: update --policy base.safetensors iter0.adv.h5 -o iter1.safetensors; see update(1).";
  spec.common.output = spec.common.seed = spec.common.threads = spec.common.device = spec.common.progress = true;
  // The seed of the checkpoint (a resumed run) or of the rollout (RL), else drawn at random.
  spec.seed_rule = [](const CLI::App&) { return cli::SeedRule::input; };
  spec.device_rule = [](const std::string& device) {
    const auto launch = training::launch_from_environment();
    if (launch.world > 1 && device.rfind("cuda", 0) == 0 && device.find(':') == std::string::npos)
      return "cuda:" + std::to_string(launch.local_rank);  // one GPU per local rank
    return device;
  };
  return cli::make_tool<UpdateOptions>(spec, add_update_options, validate, run_update);
}

}  // namespace treerpo::tools
