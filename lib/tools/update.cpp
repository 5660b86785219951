// update.cpp -- the update stage (SFT objective).
#include "tools/update.hpp"

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/signals.hpp"
#include "format/dataset_file.hpp"
#include "model/builtin_dit.hpp"
#include "tools/policy_options.hpp"
#include "training/sft.hpp"

namespace treerpo::tools {
namespace {
struct UpdateOptions {
  std::vector<std::string> inputs;
  PolicyCliOptions policy;
  std::string objective = "sft";
  std::string trainable = ".*";
  std::string metrics;
  bool weights_only = false;
  training::SftConfig sft;
};

// Concatenates data set files (same image size).
format::Dataset load_datasets(const std::vector<std::string>& paths) {
  format::Dataset all;
  for (const auto& path : paths) {
    auto d = format::read_dataset(path);
    if (!all.images.shape.empty() &&
        !std::equal(d.images.shape.begin() + 1, d.images.shape.end(), all.images.shape.begin() + 1))
      throw DataError(path + ": /images: image size differs from " + paths[0]);
    const auto offset = static_cast<std::int64_t>(all.prompts.text.size());
    all.prompts.text.insert(all.prompts.text.end(), d.prompts.text.begin(), d.prompts.text.end());
    for (auto id : d.prompts.id) all.prompts.id.push_back(id + offset);
    if (all.images.shape.empty()) all.images.shape = d.images.shape;
    else all.images.shape[0] += d.images.shape[0];
    all.images.data.insert(all.images.data.end(), d.images.data.begin(), d.images.data.end());
  }
  if (all.prompts.text.empty()) throw DataError(paths[0] + ": no samples");
  return all;
}
}  // namespace

cli::ToolSpec update_spec() {
  cli::ToolSpec spec;
  spec.name = "update";
  spec.summary = "Train a policy; this build has the SFT objective (flow matching on data set files)";
  spec.footer = "Example: update --policy base.safetensors --steps 200 train.h5 -o sft.safetensors; see update(1).";
  spec.common.output = spec.common.seed = spec.common.threads = spec.common.device = spec.common.progress = true;
  spec.setup = [](CLI::App& app, std::string& output) {
    auto o = std::make_shared<UpdateOptions>();
    app.add_option("inputs", o->inputs, "Data set files (treerpo-shapes dataset); - = stdin")->required();
    add_policy_options(app, o->policy, /*required=*/true);
    app.add_option("--objective", o->objective, "Training objective: sft (grpo and layertuning are not built yet)")
        ->check(CLI::IsMember({"sft"}))
        ->capture_default_str();
    app.add_option("--trainable", o->trainable, "Train the parameters whose names match this regular expression")
        ->capture_default_str();
    auto& c = o->sft;
    app.add_option("--steps", c.steps, "Optimizer steps of the schedule (a resumed run stops at this step)")->capture_default_str();
    app.add_option("--until", c.until, "Stop after this step (checkpoint mid-schedule); default: --steps");
    app.add_option("--batch-size", c.batch_size, "Samples per micro-batch")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--grad-accum", c.grad_accum, "Micro-batches per optimizer step")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--lr", c.lr, "Peak learning rate (AdamW)")->capture_default_str();
    app.add_option("--lr-schedule", c.schedule, "constant, linear or cosine decay after warmup")
        ->check(CLI::IsMember({"constant", "linear", "cosine"}))->capture_default_str();
    app.add_option("--warmup", c.warmup, "Linear warmup steps")->capture_default_str();
    app.add_option("--weight-decay", c.weight_decay, "AdamW weight decay")->capture_default_str();
    app.add_option("--grad-clip", c.grad_clip, "Clip the global gradient norm; 0 = off")->capture_default_str();
    app.add_option("--cond-dropout", c.cond_dropout, "Probability of training on the null prompt (for guidance)")
        ->check(CLI::Range(0.0, 1.0))->capture_default_str();
    app.add_option("--timestep-sampling", c.timestep_sampling, "uniform or logit-normal sigma")
        ->check(CLI::IsMember({"uniform", "logit-normal"}))->capture_default_str();
    app.add_flag("--weights-only", o->weights_only, "Write the weights without optimizer state or step: a model to "
                 "ship or to start new training from, not to resume");
    app.add_option("--metrics", o->metrics, "Write one JSON line per step (step, loss, lr, grad_norm, samples/s); - = stderr");
    return [o, &output](cli::Context& ctx) -> int {
      if (output == "-") throw UsageError("give the new checkpoint a name with -o FILE");
      auto policy = load_policy(o->policy, ctx);
      policy->set_trainable(o->trainable);
      auto& cfg = o->sft;
      training::OptimizerState state;
      // Resume: optimizer moments, step and (without --seed) the seed come from the checkpoint.
      if (auto* b = dynamic_cast<model::BuiltinPolicy*>(policy.get())) {
        auto it = b->metadata().find("training");
        if (it != b->metadata().end()) {
          const auto t = nlohmann::json::parse(it->second, nullptr, false);
          if (t.is_object() && t.value("objective", "") == "sft") {
            state.step = t.value("step", std::int64_t{0});
            state.tensors = b->extras();
            if (!ctx.seed_given) ctx.seed = std::stoull(t.value("seed", std::string("0")));
            log::info("resuming SFT at step " + std::to_string(state.step) + " (seed " + std::to_string(ctx.seed) + ")");
          }
        }
      }
      cfg.seed = ctx.seed;
      const auto data = load_datasets(o->inputs);
      std::unique_ptr<std::ofstream> metrics_file;
      std::FILE* metrics = nullptr;
      if (o->metrics == "-") metrics = stderr;
      else if (!o->metrics.empty()) {
        metrics_file = std::make_unique<std::ofstream>(o->metrics);
        if (!*metrics_file) throw CreateError(with_errno(o->metrics + ": cannot create metrics file", errno));
      }
      const std::int64_t end = cfg.until < 0 ? cfg.steps : std::min(cfg.until, cfg.steps);
      cli::Progress progress(ctx, "steps", static_cast<std::uint64_t>(std::max<std::int64_t>(end, 0)));
      double last_loss = 0;
      state = training::train_sft(*policy, cfg, data.prompts, data.images, state, [&](const training::StepMetrics& m) {
        last_loss = m.loss;
        const std::string line = nlohmann::ordered_json{{"step", m.step}, {"loss", m.loss}, {"lr", m.lr},
                                                {"grad_norm", m.grad_norm}, {"samples_per_s", m.samples_per_s}}
                                     .dump();
        if (metrics) std::fprintf(metrics, "%s\n", line.c_str());
        if (metrics_file) *metrics_file << line << "\n" << std::flush;
        progress.update(static_cast<std::uint64_t>(m.step));
        return signals::pending() == 0;  // a stop request: finish this step, then checkpoint
      });
      progress.finish();
      const nlohmann::json training{{"objective", "sft"}, {"step", state.step}, {"seed", std::to_string(ctx.seed)},
                                    {"steps", cfg.steps}};
      {
        signals::AllowPublish publish;  // the checkpoint a stop asks for must be written
        if (o->weights_only) policy->save(output, ctx.force, {}, {{"provenance", ctx.provenance_record({})}});
        else
          policy->save(output, ctx.force, state.tensors,
                       {{"provenance", ctx.provenance_record({})}, {"training", training.dump()}});
      }
      log::summary("step " + std::to_string(state.step) + "/" + std::to_string(cfg.steps) + ", loss " +
                   std::to_string(last_loss) + ": wrote " + output);
      if (ctx.json) std::printf("%s\n", nlohmann::json{{"output", output}, {"step", state.step}, {"loss", last_loss}}.dump().c_str());
      // Stopped early by a signal: exit 128+N, saying that the checkpoint is there.
      if (const int signo = signals::pending())
        throw Interrupted(signo, "resumable checkpoint written to " + output + " at step " + std::to_string(state.step));
      return 0;
    };
  };
  return spec;
}

}  // namespace treerpo::tools
