// score.cpp -- the score stage: leaf images (stored, decoded or pixel-space latents), every
// requested reward in batches, the file with its rewards added.
#include "tools/score.hpp"

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/summary.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/signals.hpp"
#include "model/policy.hpp"
#include "scoring/image_rewards.hpp"
#include "scoring/reward_process.hpp"
#include "scoring/torchscript_reward.hpp"
#include "tools/stage_io.hpp"

namespace treerpo::tools {
namespace {
// "name:weight" -> (name, weight); the weight is optional.
std::pair<std::string, double> split_weight(const std::string& spec, const std::string& option) {
  const auto colon = spec.rfind(':');
  if (colon == std::string::npos) return {spec, 1.0};
  try {
    std::size_t used = 0;
    const double w = std::stod(spec.substr(colon + 1), &used);
    if (used != spec.size() - colon - 1 || !std::isfinite(w)) throw std::invalid_argument("weight");
    return {spec.substr(0, colon), w};
  } catch (const std::exception&) {
    throw UsageError(option + " " + spec + ": the weight after ':' is not a number");
  }
}

// The program's argument vector: the string split at blanks, '...' and "..." grouping (no shell:
// no variables, globs or redirections).
std::vector<std::string> process_argv(const std::string& command) {
  std::vector<std::string> argv;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (const char ch : command) {
    if (quote) {
      if (ch == quote) quote = 0;
      else cur += ch;
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
      in_word = true;
    } else if (ch == ' ' || ch == '\t') {
      if (in_word) argv.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += ch;
      in_word = true;
    }
  }
  if (quote) throw UsageError("--reward-process: unbalanced quote in '" + command + "'");
  if (in_word) argv.push_back(cur);
  return argv;
}

std::string stem(const std::string& path) {
  auto base = path.substr(path.find_last_of('/') + 1);
  return base.substr(0, base.find('.'));
}

void check_name(const std::string& name, const std::string& option) {
  if (name.empty() || name.find_first_of("/ \t\n") != std::string::npos || name == "." || name == "..")
    throw UsageError(option + ": '" + name + "' is not a valid reward name (no '/', no spaces)");
}

// Conditioning rows of the leaves [begin, end) from the file's precomputed embeddings.
model::Conditioning leaf_conditioning(const format::Trajectory& t, std::size_t begin, std::size_t end) {
  model::Conditioning c;
  if (!t.prompts.conditioning) return c;
  std::vector<std::int64_t> rows(t.leaves.prompt.begin() + static_cast<std::ptrdiff_t>(begin),
                                 t.leaves.prompt.begin() + static_cast<std::ptrdiff_t>(end));
  const auto idx = torch::tensor(rows);
  auto as_tensor = [](const format::FloatArray& a) {
    std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end());
    return torch::from_blob(const_cast<float*>(a.data.data()), shape, torch::kFloat);
  };
  c.hidden = as_tensor(*t.prompts.conditioning).index_select(0, idx);
  if (t.prompts.pooled) c.pooled = as_tensor(*t.prompts.pooled).index_select(0, idx);
  return c;
}

// One reward to compute: a built-in or a TorchScript module, with its name and weight.
struct PlannedReward {
  bool builtin;
  std::string source, name;
  double weight;
};

std::vector<PlannedReward> plan_rewards(const ScoreOptions& o) {
  std::vector<PlannedReward> plan;
  for (const auto& s : o.builtin) {
    auto [name, w] = split_weight(s, "--reward");
    if (!scoring::is_builtin_reward(name))
      throw UsageError(
          "--reward " + name +
          ": not a built-in reward (shapes, shapes-partial, shapes-geneval, shapes-geneval-partial, compressibility, "
          "brightness, saturation; TorchScript modules take --reward-module)");
    plan.push_back({true, name, name, w});
  }
  for (const auto& s : o.modules) {
    auto [path, w] = split_weight(s, "--reward-module");
    plan.push_back({false, path, stem(path), w});
  }
  return plan;
}

// The images every reward sees: stored, decoded, or the pixel-space latents themselves.
torch::Tensor leaf_images(const ScoreOptions& o, LoadedTrajectory& in, const torch::Device& device) {
  auto& t = in.trajectory;
  const auto G = static_cast<std::int64_t>(t.leaves.size());
  const auto& ls = t.rollout.latent_shape;
  std::vector<std::int64_t> lshape{G};
  lshape.insert(lshape.end(), ls.begin(), ls.end());
  auto latents = [&] { return torch::from_blob(t.leaves.latent.data.data(), lshape, torch::kFloat); };
  if (!o.decoder.empty()) {
    scoring::TorchScriptDecoder decoder(o.decoder, device);
    std::vector<torch::Tensor> parts;
    for (std::int64_t b = 0; b < G; b += o.batch_size)
      parts.push_back(decoder.decode(latents().slice(0, b, std::min<std::int64_t>(G, b + o.batch_size))));
    return parts.empty() ? torch::empty({0, 1, 1, 3}, torch::kByte) : torch::cat(parts);
  }
  if (t.leaves.image) {
    std::vector<std::int64_t> s(t.leaves.image->shape.begin(), t.leaves.image->shape.end());
    return torch::from_blob(t.leaves.image->data.data(), s, torch::kByte);
  }
  if (ls.size() == 3 && ls[0] == 3) return model::to_pixels(latents());
  throw UsageError(in.file.name + ": /leaves has no images and latents of shape [" + std::to_string(ls[0]) +
                   ", ...] are not RGB: give --decoder");
}

// Runs rewards over the leaves in batches, with progress and stop requests between batches.
class LeafScorer {
 public:
  LeafScorer(const format::Trajectory& t, torch::Tensor images, std::size_t batch, cli::Progress& progress)
      : t_(t), images_(std::move(images)), batch_(batch), progress_(progress) {
    for (auto p : t.leaves.prompt) leaf_prompt_.push_back(t.prompts.text[static_cast<std::size_t>(p)]);
  }

  format::Reward score(const PlannedReward& p, const torch::Device& device) {
    format::Reward r;
    r.name = p.name;
    r.weight = p.weight;
    if (p.builtin) {
      r.values = run_batches([&](std::size_t b, std::size_t e) {
        return scoring::score_images({p.source}, batch_images(b, e), prompts(b, e))[0];
      });
      r.settings = nlohmann::json{{"source", "builtin"}}.dump();
    } else {
      scoring::TorchScriptReward module(p.source, device);
      r.values = run_batches([&](std::size_t b, std::size_t e) {
        return module.score(images_.slice(0, static_cast<std::int64_t>(b), static_cast<std::int64_t>(e)),
                            leaf_conditioning(t_, b, e));
      });
      r.settings = nlohmann::json{{"source", "torchscript"}, {"module", p.source}}.dump();
    }
    return r;
  }

  format::Reward score_process(const ScoreOptions& o) {
    const auto argv = process_argv(o.process);
    scoring::RewardProcess proc(argv, std::chrono::milliseconds(static_cast<std::int64_t>(o.process_timeout * 1000)));
    format::Reward r;
    r.name = !o.process_name.empty() ? o.process_name : !proc.name().empty() ? proc.name() : stem(argv.at(0));
    r.weight = o.process_weight;
    r.values = run_batches([&](std::size_t b, std::size_t e) { return proc.score(prompts(b, e), batch_images(b, e)); });
    proc.finish();
    r.settings = nlohmann::ordered_json{{"source", "process"}, {"argv", argv},
                                        {"settings", nlohmann::json::parse(proc.settings())}}.dump();
    return r;
  }

 private:
  std::vector<std::string> prompts(std::size_t b, std::size_t e) const {
    return {leaf_prompt_.begin() + static_cast<std::ptrdiff_t>(b),
            leaf_prompt_.begin() + static_cast<std::ptrdiff_t>(e)};
  }

  std::vector<shapes::Image> batch_images(std::size_t b, std::size_t e) const {
    const auto view = images_.slice(0, static_cast<std::int64_t>(b), static_cast<std::int64_t>(e)).contiguous();
    std::vector<shapes::Image> out(e - b);
    const auto H = view.size(1), W = view.size(2);
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i].height = static_cast<int>(H);
      out[i].width = static_cast<int>(W);
      const auto* p = view.data_ptr<std::uint8_t>() + static_cast<std::int64_t>(i) * H * W * 3;
      out[i].rgb.assign(p, p + H * W * 3);
    }
    return out;
  }

  std::vector<float> run_batches(const std::function<std::vector<double>(std::size_t, std::size_t)>& fn) {
    const auto G = t_.leaves.size();
    std::vector<float> values;
    for (std::size_t b = 0; b < G; b += batch_) {
      signals::check();
      const auto e = std::min(G, b + batch_);
      for (double v : fn(b, e)) values.push_back(static_cast<float>(v));
      progress_.update(done_ += e - b);
    }
    return values;
  }

  const format::Trajectory& t_;
  torch::Tensor images_;
  std::size_t batch_;
  cli::Progress& progress_;
  std::size_t done_ = 0;
  std::vector<std::string> leaf_prompt_;
};

// Adds the new rewards to the file's; one already there is replaced only with --force.
void add_rewards(format::Trajectory& t, const std::vector<format::Reward>& added, const std::string& file, bool force) {
  for (std::size_t i = 0; i < added.size(); ++i) {
    check_name(added[i].name, "reward");
    for (std::size_t j = 0; j < i; ++j)
      if (added[j].name == added[i].name) throw UsageError("reward '" + added[i].name + "' is given twice");
    for (std::size_t k = 0; k < t.rewards.size(); ++k)
      if (t.rewards[k].name == added[i].name) {
        if (!force) throw UsageError(file + ": /rewards/" + added[i].name + " exists (use --force to replace it)");
        t.rewards.erase(t.rewards.begin() + static_cast<std::ptrdiff_t>(k));
        break;
      }
  }
  t.rewards.insert(t.rewards.end(), added.begin(), added.end());
}
}  // namespace

void add_score_options(CLI::App& app, ScoreOptions& o) {
  app.add_option("input", o.input, "Trajectory file; - = stdin (the default)")->capture_default_str();
  app.add_option(
         "--reward", o.builtin,
         "Built-in reward NAME[:WEIGHT] (repeatable): shapes, shapes-partial, shapes-geneval, shapes-geneval-partial, "
         "compressibility, brightness, saturation")
      ->allow_extra_args(false);
  app.add_option("--reward-module", o.modules, "TorchScript reward module FILE[:WEIGHT] (repeatable), named after "
                 "the file")
      ->allow_extra_args(false);
  app.add_option("--reward-process", o.process, "External reward program, as one string \"PROGRAM [ARG...]\" split "
                 "into words (quotes group; no shell), spoken to over schemas/reward-process-1.json");
  app.add_option("--process-name", o.process_name, "Name of the external reward (default: the name it gives, "
                 "else the program's)");
  app.add_option("--process-weight", o.process_weight, "Weight of the external reward")->capture_default_str();
  app.add_option("--process-timeout", o.process_timeout, "Seconds the external reward may take per batch (and "
                 "to start and stop)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--decoder", o.decoder, "TorchScript decoder turning final latents into images (latent-space "
                 "policies)");
  app.add_option("--batch-size", o.batch_size, "Images per reward call")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--zstd-level", o.zstd_level, "Zstandard level of the datasets; 0 = uncompressed")
      ->check(CLI::Range(0, 22))->capture_default_str();
}

void validate(const ScoreOptions& o, const cli::Given&) {
  if (plan_rewards(o).empty() && o.process.empty())
    throw UsageError("no reward: give --reward, --reward-module or --reward-process");
}

int run_score(const ScoreOptions& o, cli::Context& ctx, const std::string& output) {
  cli::check_stdout_free(ctx, output);
  const auto plan = plan_rewards(o);
  const auto start = std::chrono::steady_clock::now();
  auto in = load_trajectory(o.input);
  auto& t = in.trajectory;
  const auto G = t.leaves.size();
  const torch::Device device(ctx.device);
  cli::Progress progress(ctx, "images", G * (plan.size() + (o.process.empty() ? 0 : 1)));
  LeafScorer scorer(t, leaf_images(o, in, device), static_cast<std::size_t>(o.batch_size), progress);

  std::vector<format::Reward> added;
  nlohmann::ordered_json throughput = nlohmann::ordered_json::object();
  auto timed = [&](const std::function<format::Reward()>& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    added.push_back(fn());
    throughput[added.back().name] =
        static_cast<double>(G) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (const auto& p : plan) timed([&] { return scorer.score(p, device); });
  // A NaN or infinite reward would poison every advantage of its group: refused at the source.
  for (const auto& r : added)
    for (std::size_t g = 0; g < r.values.size(); ++g)
      if (!std::isfinite(r.values[g]))
        throw DataError("reward " + r.name + ": leaf " + std::to_string(g) + " scored " + std::to_string(r.values[g]) +
                        " (a finite score expected)");
  if (!o.process.empty()) timed([&] { return scorer.score_process(o); });
  progress.finish();
  add_rewards(t, added, in.file.name, ctx.force);
  nlohmann::ordered_json means = nlohmann::ordered_json::object();
  for (const auto& r : added) {
    double sum = 0;
    for (float v : r.values) sum += v;
    means[r.name] = G ? sum / static_cast<double>(G) : 0.0;
  }
  const double score_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto bytes = save_trajectory(output, t, ctx, {in.record()}, format::WriteOptions{o.zstd_level},
                                     nlohmann::json{{"score", score_seconds}}.dump(), in.file.file.get());
  std::string line = "scored " + std::to_string(G) + " leaves:";
  for (const auto& r : added)
    line += " " + r.name + " mean " + std::to_string(means[r.name].get<double>()).substr(0, 7) + " (" +
            std::to_string(static_cast<int>(throughput[r.name].get<double>())) + " images/s)";
  log::summary(line + "; " + std::to_string(bytes) + " bytes to " + (output == "-" ? std::string("<stdout>") : output));
  if (ctx.json)
    cli::print_json_summary(ctx, output,
                            {{"leaves", G},
                             {"mean", means},
                             {"images_per_s", throughput},
                             {"bytes", bytes},
                             {"seconds", score_seconds}});
  return 0;
}

cli::ToolSpec score_spec() {
  cli::ToolSpec spec;
  spec.name = "score";
  spec.summary = "Score every leaf of a trajectory file with built-in, TorchScript or external rewards";
  spec.footer = "Example: score --reward shapes --reward brightness:0.1 rollout.h5 -o scored.h5; see score(1).";
  spec.common.output = spec.common.threads = spec.common.device = spec.common.progress = true;
  return cli::make_tool<ScoreOptions>(spec, add_score_options, validate, run_score);
}

}  // namespace treerpo::tools
