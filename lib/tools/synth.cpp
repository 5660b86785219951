// synth.cpp -- synthetic trajectories: a tree per prompt whose every draw is keyed by
// (seed, prompt id, node path), as tree-rollout's are.
#include "tools/synth.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/summary.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/half.hpp"
#include "core/log.hpp"
#include "core/rng.hpp"
#include "core/signals.hpp"
#include "core/terminal.hpp"
#include "flow/schedule.hpp"
#include "format/prompt_file.hpp"
#include "tools/stage_io.hpp"

namespace treerpo::tools {
namespace {
using format::NodeKind;

std::vector<std::int64_t> layer_branching(const SynthOptions& o) {
  if (o.branching.size() == 1) return std::vector<std::int64_t>(static_cast<std::size_t>(o.depth), o.branching[0]);
  return o.branching;
}

void fill_normal(std::vector<float>& out, std::size_t offset, std::size_t n, std::uint64_t key, double scale,
                 double* sum_sq) {
  rng::NormalStream s(key);
  double acc = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double e = s.next();
    acc += e * e;
    out[offset + i] = static_cast<float>(scale * e);
  }
  if (sum_sq) *sum_sq = acc;
}

// The /rollout of a synthetic tree: the schedule, window and noise levels of the options.
format::RolloutConfig synthetic_rollout(const SynthOptions& o, std::uint64_t seed) {
  format::RolloutConfig r;
  r.mode = "tree";
  r.kernel = "flowgrpo";
  r.steps = o.steps;
  r.shift = o.shift;
  r.sigmas = flow::shifted_sigmas(o.steps, o.shift);
  r.depth = o.depth;
  r.branching = layer_branching(o);
  r.window_start = o.window_start;
  r.iteration = o.iteration;
  r.seed = seed;
  r.model_digest = "synthetic";
  r.latent_dtype = o.latent_dtype == "float16" ? format::LatentDtype::float16 : format::LatentDtype::float32;
  r.latent_shape = o.latent_shape;
  for (std::int64_t k = 0; k < o.depth; ++k)
    r.noise_levels.push_back(o.noise * (1.0 + o.noise_growth * static_cast<double>(k) /
                                                  static_cast<double>(std::max<std::int64_t>(o.depth - 1, 1))));
  std::int64_t leaves = 1;
  for (auto b : r.branching) leaves *= b;
  r.leaves_per_prompt = leaves;
  r.settings = nlohmann::json{{"generator", "treerpo-synth"},
                              {"note", "synthetic latents: a keyed Gaussian random walk, no model"}}
                   .dump();
  return r;
}

// The leaves of one prompt's tree: their latents (half the last window state, standing in for
// the ODE suffix) and, when the file has images, the latents as pixels.
void append_leaves(format::Trajectory& t, const std::vector<std::size_t>& layer, std::int64_t prompt_index, bool half) {
  const auto& shape = t.nodes.latent.shape;  // [N, C, H, W]
  const std::size_t H = shape[2], W = shape[3], per = shape[1] * H * W;
  const auto& n = t.nodes;
  for (std::size_t node : layer) {
    const std::size_t g = t.leaves.size();
    t.leaves.node.push_back(static_cast<std::int64_t>(node));
    t.leaves.prompt.push_back(prompt_index);
    for (std::size_t e = 0; e < per; ++e) {
      float v = 0.5f * n.latent.data[node * per + e];  // stands in for the ODE suffix
      t.leaves.latent.data[g * per + e] = half ? round_to_half(v) : v;
    }
    if (t.leaves.image) {
      for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x)
          for (std::size_t ch = 0; ch < 3; ++ch) {
            const float v = t.leaves.latent.data[g * per + (ch * H + y) * W + x];
            const float pix = std::round(std::clamp((v * 0.5f + 0.5f) * 255.0f, 0.0f, 255.0f));
            t.leaves.image->data[((g * H + y) * W + x) * 3 + ch] = static_cast<std::uint8_t>(pix);
          }
    }
  }
}

// The latent (and velocity and image) arrays of P prompts' trees, zero-filled.
void allocate_arrays(const SynthOptions& o, std::size_t P, format::Trajectory& t) {
  const auto& r = t.rollout;
  const auto H = static_cast<std::size_t>(o.latent_shape[1]), W = static_cast<std::size_t>(o.latent_shape[2]);
  const std::size_t per = static_cast<std::size_t>(o.latent_shape[0]) * H * W;
  std::size_t nodes_per_prompt = 1, width = 1;
  for (auto b : r.branching) {
    width *= static_cast<std::size_t>(b);
    nodes_per_prompt += width;
  }
  const std::size_t N = P * nodes_per_prompt, G = P * static_cast<std::size_t>(r.leaves_per_prompt);
  auto& n = t.nodes;
  n.latent.shape = {N, static_cast<std::size_t>(o.latent_shape[0]), H, W};
  n.latent.data.resize(N * per);
  if (o.velocity) n.velocity = format::FloatArray{n.latent.shape, std::vector<float>(N * per)};
  t.leaves.latent.shape = n.latent.shape;
  t.leaves.latent.shape[0] = G;
  t.leaves.latent.data.resize(G * per);
  if (o.images) t.leaves.image = format::ByteArray{{G, H, W, 3}, std::vector<std::uint8_t>(G * H * W * 3)};
}
}  // namespace

format::Trajectory synthesize(const SynthOptions& o, const std::vector<std::string>& texts,
                              std::pair<std::size_t, std::size_t> range, std::uint64_t seed,
                              const std::function<void(std::size_t)>& on_prompt) {
  format::Prompts source;
  source.text = texts;
  for (std::size_t i = 0; i < texts.size(); ++i) source.id.push_back(static_cast<std::int64_t>(i));
  return synthesize(o, source, range, seed, on_prompt);
}

format::Trajectory synthesize(const SynthOptions& o, const format::Prompts& source,
                              std::pair<std::size_t, std::size_t> range, std::uint64_t seed,
                              const std::function<void(std::size_t)>& on_prompt) {
  format::Trajectory t;
  t.rollout = synthetic_rollout(o, seed);
  const auto& r = t.rollout;
  const std::size_t per = static_cast<std::size_t>(o.latent_shape[0] * o.latent_shape[1] * o.latent_shape[2]);
  const bool half = r.latent_dtype == format::LatentDtype::float16;
  const std::size_t P = range.second - range.first;
  allocate_arrays(o, P, t);
  auto& n = t.nodes;
  // Prompts (with any precomputed embeddings) are carried over; --conditioning makes random ones.
  t.prompts = format::select_prompts(source, range.first, range.second);
  const bool random_conditioning = !o.conditioning.empty() && !source.conditioning;
  if (random_conditioning) {
    const auto L = static_cast<std::size_t>(o.conditioning[0]), D = static_cast<std::size_t>(o.conditioning[1]);
    t.prompts.conditioning = format::FloatArray{{P, L, D}, std::vector<float>(P * L * D)};
  }

  const double log_sqrt_2pi = 0.5 * std::log(2.0 * M_PI);
  for (std::size_t pi = 0; pi < P; ++pi) {
    signals::check();
    const auto id = t.prompts.id[pi];
    const auto prompt_index = static_cast<std::int64_t>(pi);
    if (random_conditioning) {
      const std::size_t block = t.prompts.conditioning->data.size() / P;
      fill_normal(t.prompts.conditioning->data, pi * block, block,
                  rng::derive_key(seed, rng::Domain::synthetic, {static_cast<std::uint64_t>(id), 1}), 1.0, nullptr);
    }
    // Root: the trunk's end at the window start.
    const std::size_t root = n.size();
    n.prompt.push_back(prompt_index);
    n.parent.push_back(-1);
    n.depth.push_back(0);
    n.step.push_back(static_cast<std::int32_t>(o.window_start));
    n.kind.push_back(NodeKind::trunk);
    n.log_prob.push_back(std::nan(""));
    n.noise_std.push_back(0.0f);
    const std::uint64_t root_key = rng::derive_key(seed, rng::Domain::initial_noise, {static_cast<std::uint64_t>(id)});
    n.noise_key.push_back(root_key);
    fill_normal(n.latent.data, root * per, per, root_key, 1.0, nullptr);

    std::vector<std::size_t> layer{root};
    for (std::int64_t k = 0; k < o.depth; ++k) {
      const std::size_t i = static_cast<std::size_t>(o.window_start + k);
      const double sigma = r.sigmas[i], dt = r.sigmas[i + 1] - sigma;
      const double sigma_t = sigma == 1.0 ? r.sigmas[1] : sigma;  // first-step rule
      const double s = r.noise_levels[static_cast<std::size_t>(k)] * std::sqrt(sigma / (1.0 - sigma_t));
      const double step_std = s * std::sqrt(-dt);
      std::vector<std::size_t> next;
      for (std::size_t parent : layer) {
        for (std::int64_t c = 0; c < r.branching[static_cast<std::size_t>(k)]; ++c) {
          const std::size_t node = n.size();
          const std::uint64_t key = rng::child_key(n.noise_key[parent], static_cast<std::uint64_t>(c));
          double sum_sq = 0;
          fill_normal(n.latent.data, node * per, per, key, step_std, &sum_sq);
          for (std::size_t e = 0; e < per; ++e) {
            float& x = n.latent.data[node * per + e];
            x += n.latent.data[parent * per + e];
            if (half) x = round_to_half(x);
          }
          n.prompt.push_back(prompt_index);
          n.parent.push_back(static_cast<std::int64_t>(parent));
          n.depth.push_back(static_cast<std::int32_t>(k + 1));
          n.step.push_back(static_cast<std::int32_t>(i + 1));
          n.kind.push_back(k + 1 == o.depth ? NodeKind::leaf : NodeKind::branch);
          // Mean-reduced Gaussian log-density of the draw (ALGORITHM.md section 2).
          n.log_prob.push_back(-0.5 * sum_sq / static_cast<double>(per) - std::log(step_std) - log_sqrt_2pi);
          n.noise_std.push_back(static_cast<float>(step_std));
          n.noise_key.push_back(key);
          next.push_back(node);
        }
      }
      layer = std::move(next);
    }
    append_leaves(t, layer, prompt_index, half);
    if (n.velocity)  // a stand-in velocity: the node's latent scaled, so the dataset has content
      for (std::size_t node = root; node < n.size(); ++node)
        for (std::size_t e = 0; e < per; ++e) {
          float v = -n.latent.data[node * per + e];
          n.velocity->data[node * per + e] = half ? round_to_half(v) : v;
        }
    t.statistics.nfe.push_back(format::tree_nfe(o.steps, o.window_start, r.branching));
    if (on_prompt) on_prompt(pi + 1);
  }
  return t;
}

void add_synth_options(CLI::App& app, SynthOptions& o) {
  app.add_option("--prompts", o.prompts, "Prompts: a text file (one per line, ids = line order) or an HDF5 prompt "
                 "file whose embeddings are carried over (see treerpo-prompts(5))");
  app.add_option("--count", o.count, "Number of generated prompts when --prompts is not given")->capture_default_str();
  app.add_option("--steps", o.steps, "Schedule steps T")->capture_default_str();
  app.add_option("--shift", o.shift, "Schedule shift")->capture_default_str();
  app.add_option("--depth", o.depth, "Tree depth d (window layers)")->capture_default_str();
  app.add_option("--branching", o.branching, "Children per node: one value, or one per layer (B[,B...])")
      ->delimiter(',')->capture_default_str();
  app.add_option("--window-start", o.window_start, "First window step l")->capture_default_str();
  app.add_option("--noise", o.noise, "Noise level a_0 of the first layer")->capture_default_str();
  app.add_option("--noise-growth", o.noise_growth, "Growth beta: a_k = a_0 (1 + beta k / (d - 1))")
      ->capture_default_str();
  app.add_option("--iteration", o.iteration, "Training iteration recorded in the file")->capture_default_str();
  app.add_option("--latent-shape", o.latent_shape, "Latent shape C,H,W")->delimiter(',')->capture_default_str();
  app.add_option("--latent-dtype", o.latent_dtype, "Latent storage: float32 or float16")
      ->check(CLI::IsMember({"float32", "float16"}))->capture_default_str();
  app.add_flag("--images,!--no-images", o.images, "Write decoded uint8 images of the leaves (default on)");
  app.add_flag("--velocity", o.velocity, "Also write /nodes/velocity");
  app.add_option("--conditioning", o.conditioning, "Also write /prompts/conditioning of shape TOKENS,DIM")
      ->delimiter(',');
  app.add_option("--zstd-level", o.zstd_level, "Zstandard level of the datasets; 0 = uncompressed")
      ->capture_default_str();
}

void validate(const SynthOptions& o, const cli::Given&) {
  if (o.steps < 1) throw UsageError("--steps: must be >= 1");
  if (o.depth < 1) throw UsageError("--depth: must be >= 1");
  if (o.branching.size() != 1 && o.branching.size() != static_cast<std::size_t>(o.depth))
    throw UsageError("--branching: give one value or one per layer (" + std::to_string(o.depth) + ")");
  for (auto b : o.branching)
    if (b < 1) throw UsageError("--branching: values must be >= 1");
  if (o.window_start < 0 || o.window_start + o.depth > o.steps)
    throw UsageError("--window-start: the window [l, l + depth) must fit in the " + std::to_string(o.steps) + " steps");
  if (o.latent_shape.size() != 3) throw UsageError("--latent-shape: expected C,H,W");
  for (auto d : o.latent_shape)
    if (d < 1) throw UsageError("--latent-shape: extents must be >= 1");
  if (o.images && o.latent_shape[0] != 3) throw UsageError("--images needs 3 latent channels (or use --no-images)");
  if (!o.conditioning.empty() && o.conditioning.size() != 2)
    throw UsageError("--conditioning: expected TOKENS,DIM");
  if (o.zstd_level < 0 || o.zstd_level > 22) throw UsageError("--zstd-level: expected 0..22");
  if (o.count < 1) throw UsageError("--count: must be >= 1");
}

int run_synth(const SynthOptions& o, cli::Context& ctx, const std::string& output) {
  cli::check_stdout_free(ctx, output);
  const auto start = std::chrono::steady_clock::now();
  format::Prompts source;
  if (!o.prompts.empty()) {
    source = format::read_prompt_file(o.prompts);
    if (source.conditioning && !o.conditioning.empty())
      throw UsageError("--conditioning: " + o.prompts + " already has /prompts/conditioning");
  } else {
    for (std::int64_t i = 0; i < o.count; ++i) {
      source.text.push_back("synthetic prompt " + std::to_string(i));
      source.id.push_back(i);
    }
  }
  const auto range = ctx.shard.range(source.text.size());
  if (ctx.shard.count > 1)
    log::info("shard " + ctx.shard.text() + ": prompts [" + std::to_string(range.first) + ", " +
              std::to_string(range.second) + ")");
  cli::Progress progress(ctx, "prompts", range.second - range.first);
  format::Trajectory t = synthesize(o, source, range, ctx.seed, [&](std::size_t done) { progress.update(done); });
  progress.finish();
  std::vector<cli::InputRecord> inputs;
  if (!o.prompts.empty() && o.prompts != "-") inputs.push_back({o.prompts, sha256_of_file(o.prompts)});
  const double generate = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::size_t bytes = save_trajectory(output, t, ctx, inputs, format::WriteOptions{o.zstd_level},
                                            nlohmann::json{{"generate", generate}}.dump());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::summary("wrote " + std::to_string(t.prompts.text.size()) + " prompts, " + std::to_string(t.nodes.size()) +
               " nodes, " + std::to_string(t.leaves.size()) + " leaves (" + std::to_string(bytes) + " bytes) to " +
               (output == "-" ? std::string("<stdout>") : output));
  if (ctx.json)
    cli::print_json_summary(ctx, output,
                            {{"prompts", t.prompts.text.size()},
                             {"nodes", t.nodes.size()},
                             {"leaves", t.leaves.size()},
                             {"bytes", bytes},
                             {"seed", std::to_string(ctx.seed)},
                             {"shard", ctx.shard.text()},
                             {"seconds", seconds}});
  return 0;
}

cli::ToolSpec synth_spec() {
  cli::ToolSpec spec;
  spec.name = "treerpo-synth";
  spec.summary = "Write a synthetic trajectory file (keyed random tree, no model) for tests and pipelines";
  spec.footer = "Example: treerpo-synth --count 8 --seed 1 -o synth.h5; see treerpo-synth(1).";
  spec.common.output = spec.common.seed = spec.common.shard = spec.common.progress = true;
  return cli::make_tool<SynthOptions>(spec, add_synth_options, validate, run_synth);
}

}  // namespace treerpo::tools
