// tree_rollout.cpp -- the tree-rollout stage: options, window and noise resolution, waves of
// prompts through the sampler, the trajectory file.
#include "tools/tree_rollout.hpp"

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/choice.hpp"
#include "cli/summary.hpp"
#include "cli/context.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/signals.hpp"
#include "flow/schedule.hpp"
#include "format/prompt_file.hpp"
#include "format/trajectory_io.hpp"
#include "h5/io.hpp"
#include "rollout/tree_sampler.hpp"
#include "tools/policy_options.hpp"

namespace treerpo::tools {
namespace {
const char* mode_name(RolloutMode m) {
  return m == RolloutMode::tree ? "tree" : m == RolloutMode::window ? "window" : "independent";
}

// The tree shape, window and noise of the chosen mode, checked. Returns the sampler config
// without seed, policy facts or batching.
rollout::SamplerConfig resolve(const RolloutOptions& o, std::uint64_t seed, double& beta) {
  rollout::SamplerConfig c;
  if (o.steps < 1) throw UsageError("--steps: must be >= 1");
  c.sigmas = flow::shifted_sigmas(o.steps, o.shift);
  c.kernel = o.kernel;
  c.reduction = o.reduction;
  const bool tree = o.mode == RolloutMode::tree, independent = o.mode == RolloutMode::independent;
  beta = o.noise_growth.value_or(tree ? 0.5 : 0.0);
  const std::int64_t d = independent ? o.steps : o.depth;
  if (d < 1) throw UsageError("--depth: must be >= 1");
  if (tree) {
    if (o.branching.size() != 1 && o.branching.size() != static_cast<std::size_t>(d))
      throw UsageError("--branching: give one value or one per layer (" + std::to_string(d) + ")");
    for (auto b : o.branching)
      if (b < 1) throw UsageError("--branching: every value must be >= 1, got " + std::to_string(b));
    c.branching = o.branching.size() == 1 ? std::vector<std::int64_t>(static_cast<std::size_t>(d), o.branching[0])
                                          : o.branching;
    std::int64_t leaves = 1;
    for (auto b : c.branching) leaves *= b;
    if (o.leaves != 0 && o.leaves != leaves)
      throw UsageError("--leaves " + std::to_string(o.leaves) + ": a tree with --branching has " +
                       std::to_string(leaves) + " leaves per prompt");
    c.roots = 1;
  } else {
    c.branching.assign(static_cast<std::size_t>(d), 1);
    c.roots = o.leaves == 0 ? 16 : o.leaves;
    if (c.roots < 1) throw UsageError("--leaves: must be >= 1");
  }
  if (independent) {
    c.window_start = 0;
  } else {
    // The window ends before the last step (l + d <= T - 1): the step to sigma = 0 is always ODE.
    if (d > o.steps - 1)
      throw UsageError("--depth " + std::to_string(d) + ": the window must end before the last of the " +
                       std::to_string(o.steps) + " steps of the schedule (depth <= steps - 1)");
    if (o.window.start < 0 || o.window.start + d > o.steps - 1)
      throw UsageError("--window-start " + std::to_string(o.window.start) + ": the window of depth " +
                       std::to_string(d) + " would reach the last of the " + std::to_string(o.steps) +
                       " steps (l + d <= steps - 1: the step to sigma = 0 is always ODE)");
    try {
      c.window_start = rollout::window_start(o.window, o.iteration, o.steps, d, seed);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("window: ") + e.what());
    }
  }
  if (!o.noise_levels.empty()) {
    if (o.noise_levels.size() != static_cast<std::size_t>(d))
      throw UsageError("--noise-levels: expected " + std::to_string(d) + " values (one per " +
                       (independent ? "step" : "window layer") + "), got " + std::to_string(o.noise_levels.size()));
    c.noise_levels = o.noise_levels;
  } else {
    c.noise_levels = rollout::dynamic_noise(o.noise, beta, d);
  }
  // Every SDE step must be a proper Gaussian: its std is part of the stored log-probability.
  for (std::int64_t k = 0; k < d; ++k) {
    const auto i = static_cast<std::size_t>(c.window_start + k);
    const auto a = c.noise_levels[static_cast<std::size_t>(k)];
    if (!(a > 0))
      throw UsageError("noise level of layer " + std::to_string(k) + " must be > 0, got " + std::to_string(a));
    const auto t = flow::transition(c.kernel, torch::zeros({1}), torch::zeros({1}),
                                    {c.sigmas[i], c.sigmas[i + 1], c.sigmas[1]}, a);
    if (!(t.std > 0))
      throw UsageError(std::string("--kernel ") + flow::kernel_name(o.kernel) + ": step " + std::to_string(i) +
                       " (sigma " + std::to_string(c.sigmas[i]) + " -> " + std::to_string(c.sigmas[i + 1]) +
                       ") has no noise; end the window before the last step");
  }
  if (o.noise_block < 1) throw UsageError("--noise-block: must be >= 1");
  c.noise_block = o.noise_block;
  if (o.max_batch < 1) throw UsageError("--max-batch: must be >= 1");
  if (o.wave_prompts < 1) throw UsageError("--wave-prompts: must be >= 1");
  if (o.zstd_level < 0 || o.zstd_level > 22) throw UsageError("--zstd-level: expected 0..22");
  c.guidance = o.guidance;
  if (o.ode_stride < 1) throw UsageError("--ode-stride: must be >= 1");
  if (o.ode_stride > 1 && (o.trunk || o.suffix))
    throw UsageError(std::string(o.trunk ? "--store-trunk" : "--store-suffix") +
                     " stores a state per schedule step: it needs --ode-stride 1");
  c.ode_solver = o.ode_solver;
  c.ode_stride = o.ode_stride;
  c.max_batch = o.max_batch;
  c.storage = o.latent_dtype == "float16" ? std::optional<torch::ScalarType>(torch::kHalf) : std::nullopt;
  c.store_velocity = o.velocity;
  c.store_trunk = o.trunk;
  c.store_suffix = o.suffix;
  c.seed = seed;
  if (o.iteration < 0) throw UsageError("--iteration: must be >= 0");
  c.iteration = o.iteration;
  return c;
}

// The /rollout group: the sampler's configuration as the file records it. Only what shapes the
// samples goes in its settings (not --max-batch or threads): reruns with other batching give
// identical datasets.
format::RolloutConfig rollout_record(const RolloutOptions& o, const rollout::SamplerConfig& config, double beta,
                                     const model::Policy& policy, std::uint64_t seed) {
  format::RolloutConfig r;
  r.mode = mode_name(o.mode);
  r.kernel = flow::kernel_name(o.kernel);
  r.logprob_reduction = flow::reduction_name(o.reduction);
  r.steps = o.steps;
  r.shift = o.shift;
  r.sigmas = config.sigmas;
  r.depth = static_cast<std::int64_t>(config.branching.size());
  r.branching = config.branching;
  std::int64_t per_root = 1;
  for (auto b : config.branching) per_root *= b;
  r.leaves_per_prompt = per_root * config.roots;
  r.window_start = config.window_start;
  r.noise_levels = config.noise_levels;
  r.noise_block = config.noise_block;
  r.iteration = o.iteration;
  r.seed = seed;
  r.guidance = o.guidance;
  r.model_digest = policy.digest();
  r.timestep_convention = policy.timestep_convention();
  r.latent_dtype = config.storage ? format::LatentDtype::float16 : format::LatentDtype::float32;
  r.latent_shape = policy.latent_shape();
  r.settings =
      nlohmann::ordered_json{{"sampler", "tree-rollout"},
                             {"schedule", flow::schedule_name(o.schedule)},
                             {"policy_dtype", o.policy.dtype},
                             {"roots_per_prompt", config.roots},
                             {"guidance", config.guidance},
                             {"ode", {{"solver", flow::ode_solver_name(config.ode_solver)}, {"stride", config.ode_stride}}},
                             {"window",
                              {{"schedule", rollout::window_rule_name(o.window.rule)},
                               {"start", o.window.start},
                               {"stride", o.window.stride},
                               {"interval", o.window.interval},
                               {"overflow", rollout::window_overflow_name(o.window.overflow)}}},
                             {"noise", {{"a0", o.noise}, {"beta", beta}, {"explicit_levels", !o.noise_levels.empty()}}},
                             {"velocity", config.store_velocity},
                             {"store_trunk", config.store_trunk},
                             {"store_suffix", config.store_suffix},
                             {"reconstruction",
                              "dynamic noise a_k = a_0 (1 + beta k / max(d - 1, 1)) reconstructs Dynamic-TreeRPO's "
                              "Eq. 6 (ALGORITHM.md section 3)"}}
          .dump();
  return r;
}

// What sampling wrote, for the summary line and --json.
struct SampleCounts {
  std::int64_t nodes = 0, leaves = 0, nfe = 0, nfe_per_prompt = 0;
  double sample_seconds = 0;
};

// Samples the prompts of `t` in waves and writes them into `out` as they finish, so memory holds
// one wave's states however many prompts there are.
SampleCounts sample_waves(const RolloutOptions& o, const cli::Context& ctx, model::Policy& policy,
                          const rollout::SamplerConfig& config, format::Trajectory& t, h5::OutputFile& out,
                          const std::string& prompts_name, std::int64_t path_steps,
                          const std::vector<cli::InputRecord>& inputs, std::chrono::steady_clock::time_point start) {
  const auto shape = policy.latent_shape();
  format::TrajectoryLayout layout;
  layout.velocity = config.store_velocity;
  if (config.images)
    layout.image_shape = {static_cast<std::uint64_t>(shape[1]), static_cast<std::uint64_t>(shape[2]), 3};
  if (config.store_suffix) layout.path_steps = static_cast<std::uint64_t>(path_steps);
  const auto P = t.prompts.text.size();
  const auto P64 = static_cast<std::uint64_t>(P);
  format::TrajectoryWriter writer(out.id(), t, layout, format::WriteOptions{o.zstd_level},
                                  P64 * static_cast<std::uint64_t>(rollout::stored_nodes(config)),
                                  P64 * static_cast<std::uint64_t>(t.rollout.leaves_per_prompt));
  SampleCounts counts;
  counts.nfe_per_prompt = rollout::expected_nfe(config);
  cli::Progress progress(ctx, "evaluations", static_cast<std::uint64_t>(counts.nfe_per_prompt) * P);
  std::int64_t done_before = 0;
  for (std::size_t begin = 0; begin < P; begin += static_cast<std::size_t>(o.wave_prompts)) {
    const auto end = std::min(P, begin + static_cast<std::size_t>(o.wave_prompts));
    const auto cond = model::conditioning_for(policy, t.prompts, begin, end, prompts_name);
    const std::vector<std::int64_t> ids(t.prompts.id.begin() + static_cast<std::ptrdiff_t>(begin),
                                        t.prompts.id.begin() + static_cast<std::ptrdiff_t>(end));
    format::Trajectory wave;
    const bool finished = rollout::sample_tree(policy, cond, ids, static_cast<std::int64_t>(begin), config, wave,
                                               [&](std::int64_t evaluations) {
                                                 progress.update(static_cast<std::uint64_t>(done_before + evaluations));
                                                 return signals::pending() == 0;
                                               });
    signals::check();
    if (!finished) throw Error(ExitCode::software, "sampling stopped without a signal");
    writer.append(wave.nodes, wave.leaves, wave.statistics.nfe);
    done_before += counts.nfe_per_prompt * static_cast<std::int64_t>(end - begin);
  }
  progress.finish();
  counts.sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  counts.nfe = writer.nfe_total();
  writer.finish({}, std::nullopt,
                {ctx.provenance_record(inputs, nlohmann::json{{"sample", counts.sample_seconds}}.dump())});
  counts.nodes = static_cast<std::int64_t>(writer.nodes_written());
  counts.leaves = static_cast<std::int64_t>(writer.leaves_written());
  return counts;
}
}  // namespace

void add_tree_rollout_options(CLI::App& app, RolloutOptions& o) {
  add_policy_options(app, o.policy, /*required=*/true);
  app.add_option("--prompts", o.prompts, "Prompts: a text file (one per line) or an HDF5 prompt file; - = stdin")
      ->required();
  app.add_option("--iteration", o.iteration, "Training iteration j (positions the sliding window)")
      ->capture_default_str();
  cli::add_choice(
      app, "--mode", o.mode,
      {{"tree", RolloutMode::tree}, {"window", RolloutMode::window}, {"independent", RolloutMode::independent}},
      "tree (this method), window (MixGRPO) or independent (Flow-GRPO)");
  app.add_option("--steps", o.steps, "Schedule steps T")->capture_default_str();
  app.add_option("--shift", o.shift, "Schedule shift")->check(CLI::PositiveNumber)->capture_default_str();
  cli::add_choice(app, "--schedule", o.schedule,
                  {{"shifted", flow::Schedule::shifted}, {"sd3", flow::Schedule::sd3}, {"flux", flow::Schedule::flux}},
                  "Sigma schedule: shifted (this suite's), sd3 or flux (diffusers' SD3 and FLUX pipelines, for "
                  "exported models)");
  app.add_option("--depth", o.depth, "Window layers d (tree depth); independent mode uses every step")
      ->capture_default_str();
  app.add_option("--branching", o.branching, "Tree: children per node, one value or one per layer (B[,B...])")
      ->delimiter(',')->capture_default_str();
  app.add_option("--leaves", o.leaves, "Trajectories per prompt for window/independent (default 16); a tree has "
                 "prod(branching)");
  app.add_option("--noise", o.noise, "Noise level a_0 of the first SDE layer")->capture_default_str();
  app.add_option("--noise-growth", o.noise_growth, "Dynamic noise beta: a_k = a_0 (1 + beta k / max(d - 1, 1)); "
                 "default 0.5 for a tree, 0 for the baselines");
  app.add_option("--noise-levels", o.noise_levels, "Explicit noise level per layer (A[,A...]); overrides "
                 "--noise and --noise-growth")->delimiter(',');
  app.add_option("--noise-block", o.noise_block, "SDE noise on B x B pixel blocks: 1 = isotropic; B > 1 = only "
                 "the block-constant (low-frequency) part of the noise, with the drift projected alike; B must "
                 "divide the latent height and width")
      ->capture_default_str();
  cli::add_choice(app, "--kernel", o.kernel,
                  {{"flowgrpo", flow::Kernel::flowgrpo}, {"dance", flow::Kernel::dance}, {"cps", flow::Kernel::cps}},
                  "SDE step kernel: flowgrpo, dance or cps");
  cli::add_choice(app, "--logprob-reduction", o.reduction,
                  {{"mean", flow::Reduction::mean}, {"sum", flow::Reduction::sum}},
                  "Reduce per-element log-densities by mean or sum");
  app.add_option("--window-start", o.window.start, "First window step l_0")->capture_default_str();
  app.add_option("--window-stride", o.window.stride, "Steps the window moves each interval")->capture_default_str();
  app.add_option("--window-interval", o.window.interval, "Iterations tau between moves")->capture_default_str();
  using rollout::WindowOverflow, rollout::WindowRule;
  cli::add_choice(
      app, "--window-schedule", o.window.rule,
      {{"progressive", WindowRule::progressive}, {"fixed", WindowRule::fixed}, {"random", WindowRule::random}},
      "progressive, fixed or random (seeded by the iteration)");
  cli::add_choice(app, "--window-overflow", o.window.overflow,
                  {{"rollback", WindowOverflow::rollback}, {"clamp", WindowOverflow::clamp}},
                  "When the window would pass the last step: rollback to l_0 or clamp");
  app.add_option("--guidance", o.guidance, "Classifier-free guidance scale (1 = conditional only)")
      ->capture_default_str();
  cli::add_choice(app, "--ode-solver", o.ode_solver,
                  {{"euler", flow::OdeSolver::euler}, {"dpm2m", flow::OdeSolver::dpm2m}},
                  "Solver of the ODE trunk and suffix: euler, or dpm2m (DPM-Solver++(2M): second order at one "
                  "evaluation per step); the window's SDE steps are unchanged");
  app.add_option("--ode-stride", o.ode_stride, "Schedule steps per trunk/suffix step: S > 1 evaluates the model "
                 "every S-th sigma outside the window (fewer evaluations per leaf)")
      ->capture_default_str();
  app.add_option("--max-batch", o.max_batch, "Model rows per forward pass (a guided state takes two)")
      ->capture_default_str();
  app.add_option("--wave-prompts", o.wave_prompts, "Prompts sampled together (bounds the memory of states)")
      ->capture_default_str();
  app.add_option("--latent-dtype", o.latent_dtype, "Latent storage: float32 or float16 (rounded before the "
                 "log-probability, so it stays exact)")
      ->check(CLI::IsMember({"float32", "float16"}))->capture_default_str();
  app.add_flag("--velocity", o.velocity, "Also store the model velocity evaluated at every node");
  app.add_flag("--store-trunk", o.trunk, "Also store every trunk state before the window (a chain of trunk nodes "
               "from the initial noise)");
  app.add_flag("--store-suffix", o.suffix, "Also store each leaf's ODE-suffix states after the window "
               "(/leaves/path, steps l+d+1 .. T-1)");
  app.add_flag("--images,!--no-images", o.images, "Store decoded uint8 images of the leaves (pixel-space policies; "
               "default on)");
  app.add_option("--zstd-level", o.zstd_level, "Zstandard level of the datasets; 0 = uncompressed")
      ->capture_default_str();
}

void validate(const RolloutOptions& o, const cli::Given& given) {
  // Options that shape only another mode are refused rather than silently ignored.
  if (o.mode != RolloutMode::tree && given("--branching"))
    throw UsageError(std::string("--branching applies to --mode tree (") + mode_name(o.mode) +
                     " draws --leaves trajectories)");
  if (o.mode == RolloutMode::independent && given("--depth"))
    throw UsageError("--depth does not apply to --mode independent (SDE at every step)");
  if (o.mode == RolloutMode::independent &&
      (given("--window-start") || given("--window-stride") || given("--window-interval") ||
       given("--window-schedule") || given("--window-overflow")))
    throw UsageError("the window options do not apply to --mode independent (SDE at every step)");
}

int run_tree_rollout(const RolloutOptions& o, cli::Context& ctx, const std::string& output) {
  cli::check_stdout_free(ctx, output);
  double beta = 0;
  auto config = resolve(o, ctx.seed, beta);
  const auto path_steps =
      format::leaf_path_steps(o.steps, config.window_start, static_cast<std::int64_t>(config.branching.size()));
  if (config.store_suffix && path_steps < 1)
    throw UsageError("--store-suffix: the window ends within one step of the last: no ODE-suffix states to store");
  const auto start = std::chrono::steady_clock::now();
  const auto source = format::read_prompt_file(o.prompts);
  const std::string prompts_name = o.prompts == "-" ? "<stdin>" : o.prompts;
  if (source.text.empty()) throw DataError(prompts_name + ": no prompts");
  auto policy = load_policy(o.policy, ctx);
  const auto shape = policy->latent_shape();
  if (o.noise_block > 1 && (shape.size() != 3 || shape[1] % o.noise_block != 0 || shape[2] % o.noise_block != 0))
    throw UsageError("--noise-block " + std::to_string(o.noise_block) + ": expected a divisor of the latent height "
                     "and width (the policy's latents are " + nlohmann::json(shape).dump() + ")");
  // FLUX's shift depends on the image's token count: its packed latents are 2x2 patches.
  if (o.schedule != flow::Schedule::shifted)
    config.sigmas = flow::schedule_sigmas(o.schedule, o.steps, o.shift,
                                          shape.size() == 3 ? (shape[1] / 2) * (shape[2] / 2) : 0);
  config.images = o.images && shape.size() == 3 && shape[0] == 3;
  if (o.images && !config.images) log::info("latents are not RGB: no /leaves/image (score decodes them)");

  format::Trajectory t;
  const auto range = ctx.shard.range(source.text.size());
  if (ctx.shard.count > 1)
    log::info("shard " + ctx.shard.text() + ": prompts [" + std::to_string(range.first) + ", " +
              std::to_string(range.second) + ")");
  t.prompts = format::select_prompts(source, range.first, range.second);
  t.rollout = rollout_record(o, config, beta, *policy, ctx.seed);
  std::vector<cli::InputRecord> inputs{{o.policy.path, sha256_of_file(o.policy.path)}};
  if (o.prompts != "-") inputs.push_back({o.prompts, sha256_of_file(o.prompts)});

  // The file is written as the waves finish, inside the temporary that commit() publishes.
  h5::OutputFile out(output, ctx.force, ctx.tool);
  const auto counts = sample_waves(o, ctx, *policy, config, t, out, prompts_name, path_steps, inputs, start);
  out.commit();
  const std::size_t bytes = out.bytes();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto P = t.prompts.text.size();
  const auto independent_nfe = t.rollout.leaves_per_prompt * o.steps;
  log::summary(std::string(mode_name(o.mode)) + ": " + std::to_string(P) + " prompts, " +
               std::to_string(counts.leaves) + " leaves, NFE " + std::to_string(counts.nfe) + " (" +
               std::to_string(counts.nfe_per_prompt) + " per prompt; " + std::to_string(independent_nfe) +
               " as independent trajectories), window at step " + std::to_string(config.window_start) + ", " +
               std::to_string(bytes) + " bytes to " + (output == "-" ? std::string("<stdout>") : output));
  if (ctx.json)
    cli::print_json_summary(ctx, output,
                            {{"mode", mode_name(o.mode)},
                             {"prompts", P},
                             {"nodes", counts.nodes},
                             {"leaves", counts.leaves},
                             {"nfe", counts.nfe},
                             {"nfe_per_prompt", counts.nfe_per_prompt},
                             {"nfe_independent_per_prompt", independent_nfe},
                             {"window_start", config.window_start},
                             {"bytes", bytes},
                             {"seed", std::to_string(ctx.seed)},
                             {"shard", ctx.shard.text()},
                             {"seconds", seconds},
                             {"sample_seconds", counts.sample_seconds}});
  return 0;
}

cli::ToolSpec tree_rollout_spec() {
  cli::ToolSpec spec;
  spec.name = "tree-rollout";
  spec.summary = "Sample a policy on prompts as trees with shared prefixes (or as window / independent "
                 "baselines) and write a trajectory file";
  spec.footer = "Example: tree-rollout --policy base.safetensors --prompts train.txt --iteration 0 -o rollout.h5; "
                "see tree-rollout(1).";
  spec.common.output = spec.common.seed = spec.common.threads = spec.common.device = spec.common.shard =
      spec.common.progress = true;
  return cli::make_tool<RolloutOptions>(spec, add_tree_rollout_options, validate, run_tree_rollout);
}

}  // namespace treerpo::tools
