// score.cpp -- the score stage: leaf images (stored, decoded or pixel-space latents), every
// requested reward in batches, the file with its rewards added.
#include "tools/score.hpp"

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

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
struct ScoreOptions {
  std::string input = "-";
  std::vector<std::string> builtin;   // NAME[:WEIGHT]
  std::vector<std::string> modules;   // FILE[:WEIGHT]
  std::string process;                // "PROGRAM ARG..."
  std::string process_name;
  double process_weight = 1.0;
  double process_timeout = 60.0;
  std::string decoder;
  std::int64_t batch_size = 64;
  int zstd_level = 3;
};

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
}  // namespace

cli::ToolSpec score_spec() {
  cli::ToolSpec spec;
  spec.name = "score";
  spec.summary = "Score every leaf of a trajectory file with built-in, TorchScript or external rewards";
  spec.footer = "Example: score --reward shapes --reward brightness:0.1 rollout.h5 -o scored.h5; see score(1).";
  spec.common.output = spec.common.threads = spec.common.device = spec.common.progress = true;
  spec.setup = [](CLI::App& app, std::string& output) {
    auto o = std::make_shared<ScoreOptions>();
    app.add_option("input", o->input, "Trajectory file; - = stdin (the default)")->capture_default_str();
    app.add_option("--reward", o->builtin, "Built-in reward NAME[:WEIGHT] (repeatable): shapes, shapes-partial, shapes-geneval, shapes-geneval-partial, "
                   "compressibility, brightness, saturation")
        ->allow_extra_args(false);
    app.add_option("--reward-module", o->modules, "TorchScript reward module FILE[:WEIGHT] (repeatable), named after "
                   "the file")
        ->allow_extra_args(false);
    app.add_option("--reward-process", o->process, "External reward program, as one string \"PROGRAM [ARG...]\" split "
                   "into words (quotes group; no shell), spoken to over schemas/reward-process-1.json");
    app.add_option("--process-name", o->process_name, "Name of the external reward (default: the name it gives, "
                   "else the program's)");
    app.add_option("--process-weight", o->process_weight, "Weight of the external reward")->capture_default_str();
    app.add_option("--process-timeout", o->process_timeout, "Seconds the external reward may take per batch (and "
                   "to start and stop)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--decoder", o->decoder, "TorchScript decoder turning final latents into images (latent-space "
                   "policies)");
    app.add_option("--batch-size", o->batch_size, "Images per reward call")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--zstd-level", o->zstd_level, "Zstandard level of the datasets; 0 = uncompressed")
        ->check(CLI::Range(0, 22))->capture_default_str();
    return [o, &output](cli::Context& ctx) -> int {
      cli::check_stdout_free(ctx, output);
      struct Planned { std::string kind, source, name; double weight; };
      std::vector<Planned> plan;
      for (const auto& s : o->builtin) {
        auto [name, w] = split_weight(s, "--reward");
        if (!scoring::is_builtin_reward(name))
          throw UsageError("--reward " + name + ": not a built-in reward (shapes, shapes-partial, shapes-geneval, shapes-geneval-partial, compressibility, "
                           "brightness, saturation; TorchScript modules take --reward-module)");
        plan.push_back({"builtin", name, name, w});
      }
      for (const auto& s : o->modules) {
        auto [path, w] = split_weight(s, "--reward-module");
        plan.push_back({"torchscript", path, stem(path), w});
      }
      if (plan.empty() && o->process.empty())
        throw UsageError("no reward: give --reward, --reward-module or --reward-process");
      const auto start = std::chrono::steady_clock::now();
      auto in = load_trajectory(o->input);
      auto& t = in.trajectory;
      const auto G = t.leaves.size();
      const torch::Device device(ctx.device);

      // The images every reward sees: stored, decoded, or the pixel-space latents themselves.
      torch::Tensor images;
      const auto& ls = t.rollout.latent_shape;
      std::vector<std::int64_t> lshape{static_cast<std::int64_t>(G)};
      lshape.insert(lshape.end(), ls.begin(), ls.end());
      auto latents = [&] { return torch::from_blob(t.leaves.latent.data.data(), lshape, torch::kFloat); };
      if (!o->decoder.empty()) {
        scoring::TorchScriptDecoder decoder(o->decoder, device);
        std::vector<torch::Tensor> parts;
        for (std::int64_t b = 0; b < static_cast<std::int64_t>(G); b += o->batch_size)
          parts.push_back(decoder.decode(latents().slice(0, b, std::min<std::int64_t>(G, b + o->batch_size))));
        images = parts.empty() ? torch::empty({0, 1, 1, 3}, torch::kByte) : torch::cat(parts);
      } else if (t.leaves.image) {
        std::vector<std::int64_t> s(t.leaves.image->shape.begin(), t.leaves.image->shape.end());
        images = torch::from_blob(t.leaves.image->data.data(), s, torch::kByte);
      } else if (ls.size() == 3 && ls[0] == 3) {
        images = model::to_pixels(latents());
      } else {
        throw UsageError(in.file.name + ": /leaves has no images and latents of shape [" + std::to_string(ls[0]) +
                         ", ...] are not RGB: give --decoder");
      }
      std::vector<std::string> leaf_prompt;
      for (auto p : t.leaves.prompt) leaf_prompt.push_back(t.prompts.text[static_cast<std::size_t>(p)]);
      auto batch_images = [&](std::size_t b, std::size_t e) {
        const auto view = images.slice(0, static_cast<std::int64_t>(b), static_cast<std::int64_t>(e)).contiguous();
        std::vector<shapes::Image> out(e - b);
        const auto H = view.size(1), W = view.size(2);
        for (std::size_t i = 0; i < out.size(); ++i) {
          out[i].height = static_cast<int>(H);
          out[i].width = static_cast<int>(W);
          const auto* p = view.data_ptr<std::uint8_t>() + static_cast<std::int64_t>(i) * H * W * 3;
          out[i].rgb.assign(p, p + H * W * 3);
        }
        return out;
      };

      std::vector<format::Reward> added;
      nlohmann::ordered_json throughput = nlohmann::ordered_json::object();
      const auto B = static_cast<std::size_t>(o->batch_size);
      cli::Progress progress(ctx, "images", G * (plan.size() + (o->process.empty() ? 0 : 1)));
      std::size_t done = 0;
      auto run_batches = [&](const std::function<std::vector<double>(std::size_t, std::size_t)>& fn) {
        std::vector<float> values;
        for (std::size_t b = 0; b < G; b += B) {
          signals::check();
          const auto e = std::min(G, b + B);
          for (double v : fn(b, e)) values.push_back(static_cast<float>(v));
          progress.update(done += e - b);
        }
        return values;
      };
      for (const auto& p : plan) {
        const auto t0 = std::chrono::steady_clock::now();
        format::Reward r;
        r.name = p.name;
        r.weight = p.weight;
        if (p.kind == "builtin") {
          r.values = run_batches([&](std::size_t b, std::size_t e) {
            return scoring::score_images({p.source}, batch_images(b, e),
                                         std::vector<std::string>(leaf_prompt.begin() + static_cast<std::ptrdiff_t>(b),
                                                                  leaf_prompt.begin() + static_cast<std::ptrdiff_t>(e)))[0];
          });
          r.settings = nlohmann::json{{"source", "builtin"}}.dump();
        } else {
          scoring::TorchScriptReward module(p.source, device);
          r.values = run_batches([&](std::size_t b, std::size_t e) {
            return module.score(images.slice(0, static_cast<std::int64_t>(b), static_cast<std::int64_t>(e)),
                                leaf_conditioning(t, b, e));
          });
          r.settings = nlohmann::json{{"source", "torchscript"}, {"module", p.source}}.dump();
        }
        throughput[r.name] = static_cast<double>(G) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        added.push_back(std::move(r));
      }
      // A NaN or infinite reward would poison every advantage of its group: refused at the source.
      for (const auto& r : added)
        for (std::size_t g = 0; g < r.values.size(); ++g)
          if (!std::isfinite(r.values[g]))
            throw DataError("reward " + r.name + ": leaf " + std::to_string(g) + " scored " + std::to_string(r.values[g]) +
                            " (a finite score expected)");
      if (!o->process.empty()) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto argv = process_argv(o->process);
        scoring::RewardProcess proc(argv,
                                    std::chrono::milliseconds(static_cast<std::int64_t>(o->process_timeout * 1000)));
        format::Reward r;
        r.name = !o->process_name.empty() ? o->process_name : !proc.name().empty() ? proc.name() : stem(argv.at(0));
        r.weight = o->process_weight;
        r.values = run_batches([&](std::size_t b, std::size_t e) {
          return proc.score(std::vector<std::string>(leaf_prompt.begin() + static_cast<std::ptrdiff_t>(b),
                                                     leaf_prompt.begin() + static_cast<std::ptrdiff_t>(e)),
                            batch_images(b, e));
        });
        proc.finish();
        r.settings = nlohmann::ordered_json{{"source", "process"}, {"argv", argv},
                                            {"settings", nlohmann::json::parse(proc.settings())}}.dump();
        throughput[r.name] = static_cast<double>(G) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        added.push_back(std::move(r));
      }
      progress.finish();
      // A reward already in the file is replaced only with --force.
      for (std::size_t i = 0; i < added.size(); ++i) {
        check_name(added[i].name, "reward");
        for (std::size_t j = 0; j < i; ++j)
          if (added[j].name == added[i].name) throw UsageError("reward '" + added[i].name + "' is given twice");
        for (std::size_t k = 0; k < t.rewards.size(); ++k)
          if (t.rewards[k].name == added[i].name) {
            if (!ctx.force)
              throw UsageError(in.file.name + ": /rewards/" + added[i].name + " exists (use --force to replace it)");
            t.rewards.erase(t.rewards.begin() + static_cast<std::ptrdiff_t>(k));
            break;
          }
      }
      nlohmann::ordered_json means = nlohmann::ordered_json::object();
      for (const auto& r : added) {
        double sum = 0;
        for (float v : r.values) sum += v;
        means[r.name] = G ? sum / static_cast<double>(G) : 0.0;
        t.rewards.push_back(r);
      }
      const double score_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const auto bytes = save_trajectory(output, t, ctx, {in.record()}, format::WriteOptions{o->zstd_level},
                                         nlohmann::json{{"score", score_seconds}}.dump(), in.file.file.get());
      std::string line = "scored " + std::to_string(G) + " leaves:";
      for (const auto& r : added)
        line += " " + r.name + " mean " + std::to_string(means[r.name].get<double>()).substr(0, 7) + " (" +
                std::to_string(static_cast<int>(throughput[r.name].get<double>())) + " images/s)";
      log::summary(line + "; " + std::to_string(bytes) + " bytes to " + (output == "-" ? std::string("<stdout>") : output));
      if (ctx.json)
        std::printf("%s\n", nlohmann::ordered_json{{"tool", ctx.tool}, {"output", output}, {"leaves", G},
                                                   {"mean", means}, {"images_per_s", throughput},
                                                   {"bytes", bytes}, {"seconds", score_seconds}}
                                .dump()
                                .c_str());
      return 0;
    };
  };
  return spec;
}

}  // namespace treerpo::tools
