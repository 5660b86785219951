// model_tool.cpp -- the treerpo-model helper.
#include "tools/model_tool.hpp"

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "evaluation/denoising_probe.hpp"
#include "evaluation/image_grid.hpp"
#include "model/builtin_dit.hpp"
#include "shapes/dataset.hpp"
#include "tools/policy_options.hpp"

namespace treerpo::tools {
namespace {
// The denoising probe on held-out renders of the shapes world: MSE of x0_hat per sigma, and a
// grid (columns: the render, then x_sigma and x0_hat for each sigma).
int run_probe(model::Policy& policy, const ModelOptions& o, const cli::Context& ctx) {
  const auto shape = policy.latent_shape();
  if (shape.size() != 3 || shape[0] != 3 || shape[1] != shape[2] || !policy.reads_text())
    throw UsageError("probe: needs a pixel-space RGB policy that reads prompt text (the built-in model)");
  const auto samples = shapes::make_samples(shapes::Split::heldout, static_cast<std::size_t>(o.probe_count),
                                            static_cast<int>(shape[1]), 1);
  std::vector<std::string> texts;
  auto renders = torch::empty({o.probe_count, 3, shape[1], shape[2]});
  for (std::size_t i = 0; i < samples.size(); ++i) {
    texts.push_back(samples[i].text);
    const auto& rgb = samples[i].image.rgb;
    renders[static_cast<std::int64_t>(i)] =
        torch::from_blob(const_cast<std::uint8_t*>(rgb.data()), {shape[1], shape[2], 3}, torch::kByte)
            .permute({2, 0, 1}).to(torch::kFloat).div(127.5).sub(1.0);
  }
  const auto r =
      evaluation::denoising_probe(policy, renders, policy.encode(texts), o.probe_sigmas, ctx.seed);
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (std::size_t k = 0; k < r.sigmas.size(); ++k) j.push_back({{"sigma", r.sigmas[k]}, {"mse", r.mse[k]}});
  if (ctx.json) {
    std::printf("%s\n", nlohmann::ordered_json{{"renders", o.probe_count}, {"probe", j}}.dump(2).c_str());
  } else {
    std::printf("sigma   mse of x0_hat (%lld held-out renders, [-1, 1] units)\n",
                static_cast<long long>(o.probe_count));
    for (std::size_t k = 0; k < r.sigmas.size(); ++k) std::printf("%.3f   %.5f\n", r.sigmas[k], r.mse[k]);
  }
  if (!o.probe_grid.empty()) {
    std::vector<evaluation::GridBlock> blocks(1 + r.sigmas.size());
    blocks[0].title = "render";
    for (std::size_t k = 0; k < r.sigmas.size(); ++k) {
      char title[64];
      std::snprintf(title, sizeof title, "x_s, x0_hat at %.2f", r.sigmas[k]);
      blocks[k + 1].title = title;
    }
    for (std::size_t i = 0; i < samples.size(); ++i) {
      blocks[0].images.push_back({samples[i].image});
      for (std::size_t k = 0; k < r.sigmas.size(); ++k)
        blocks[k + 1].images.push_back({r.noised[k][i], r.predictions[k][i]});
    }
    evaluation::write_png(o.probe_grid, evaluation::compose_grid(texts, blocks, 2), ctx.force, ctx.tool);
  }
  return 0;
}

std::vector<std::string> read_words(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw NoInputError(with_errno(path, errno));
  std::vector<std::string> words;
  for (std::string w; std::getline(in, w);)
    if (!w.empty()) words.push_back(w);
  if (words.empty()) throw DataError(path + ": no words (expected one vocabulary word per line)");
  return words;
}

nlohmann::ordered_json describe(const model::Policy& p) {
  nlohmann::ordered_json j;
  j["kind"] = p.kind();
  std::int64_t total = 0, trainable = 0;
  for (const auto& [name, t] : p.named_parameters()) {
    total += t.numel();
    if (t.requires_grad()) trainable += t.numel();
  }
  j["parameters"] = total;
  j["trainable_parameters"] = trainable;
  j["latent_shape"] = p.latent_shape();
  j["digest"] = p.digest();
  j["timestep_convention"] = p.timestep_convention();
  j["output"] = p.output_sign();
  if (const auto a = p.architecture()) {
    j["config"] = nlohmann::json::parse(a->config_json);
    j["vocabulary_size"] = a->vocabulary_size;
    j["flops_per_sample"] = a->flops_per_sample;
  } else {
    j["flops_per_sample"] = nullptr;  // unknown for an arbitrary module
  }
  return j;
}

void print_info(const nlohmann::ordered_json& j, bool json) {
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("kind: %s\nparameters: %lld (%lld trainable)\nlatent shape: %s\ndigest: %s\n"
              "timestep: %s\noutput: %s\n",
              j["kind"].get<std::string>().c_str(), static_cast<long long>(j["parameters"].get<std::int64_t>()),
              static_cast<long long>(j["trainable_parameters"].get<std::int64_t>()), j["latent_shape"].dump().c_str(),
              j["digest"].get<std::string>().c_str(), j["timestep_convention"].get<std::string>().c_str(),
              j["output"].get<std::string>().c_str());
  if (!j["flops_per_sample"].is_null())
    std::printf("forward FLOPs per sample: %.4g\nconfig: %s\nvocabulary: %zu words\n",
                j["flops_per_sample"].get<double>(), j["config"].dump().c_str(),
                j["vocabulary_size"].get<std::size_t>());
}

// init: a fresh built-in model.
int run_init(const ModelOptions& o, const cli::Context& ctx, const std::string& output) {
  if (output == "-") throw UsageError("init: give the checkpoint a name with -o FILE");
  cli::check_stdout_free(ctx, output);
  o.config.validate();
  const auto words = o.vocabulary.empty() ? model::Tokenizer::default_words() : read_words(o.vocabulary);
  std::optional<model::Tokenizer> tokenizer;
  try {
    tokenizer.emplace(words);
  } catch (const std::invalid_argument& e) {
    throw DataError(o.vocabulary + ": " + e.what());
  }
  model::BuiltinPolicy policy(o.config, *tokenizer, ctx.seed);
  policy.save(output, ctx.force, {}, {{"provenance", ctx.provenance_record({})}});
  log::summary("wrote " + output + ": " + std::to_string(policy.parameter_count()) + " parameters, " + policy.digest());
  if (ctx.json) print_info(describe(policy), true);
  return 0;
}
}  // namespace

void add_model_options(CLI::App& app, ModelOptions& o) {
  app.require_subcommand(1);
  app.fallthrough();
  auto* init = app.add_subcommand("init", "Write a freshly initialised built-in model (weights, config, vocabulary)");
  init->preparse_callback([&o](std::size_t) { o.command = ModelCommand::init; });
  init->add_option("--image-size", o.config.image_size, "Image side in pixels")->capture_default_str();
  init->add_option("--channels", o.config.channels, "Image channels")->capture_default_str();
  init->add_option("--patch", o.config.patch, "Patch side")->capture_default_str();
  init->add_option("--width", o.config.width, "Transformer width")->capture_default_str();
  init->add_option("--depth", o.config.depth, "Transformer blocks")->capture_default_str();
  init->add_option("--heads", o.config.heads, "Attention heads")->capture_default_str();
  init->add_option("--mlp-ratio", o.config.mlp_ratio, "MLP width / width")->capture_default_str();
  init->add_option("--max-text-tokens", o.config.max_text_tokens, "Prompt length in tokens")->capture_default_str();
  init->add_option("--pos-embed", o.config.pos_embed, "Image-token positions: sincos (fixed 2D) or learned")
      ->check(CLI::IsMember({"sincos", "learned"}))
      ->capture_default_str();
  init->add_option("--text-pos-embed", o.config.text_pos_embed,
                   "Text-token positions: sincos (fixed 1D, at the word embeddings' scale) or learned")
      ->check(CLI::IsMember({"sincos", "learned"}))
      ->capture_default_str();
  init->add_option("--text-layers", o.config.text_layers,
                   "Transformer layers over the text alone before the joint blocks (a text encoder)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  init->add_option("--text-pool", o.config.text_pool,
                   "The prompt in every block's modulation as the mean of its tokens (mean), or only through attention (none)")
      ->check(CLI::IsMember({"mean", "none"}))
      ->capture_default_str();
  init->add_option("--out-conv", o.config.out_conv, "Channels smoothed by a 3x3 output convolution; 0 = none")
      ->capture_default_str();
  init->add_option("--prediction", o.config.prediction,
                   "What the network outputs: velocity, or x0 (the clean image, turned into a velocity)")
      ->check(CLI::IsMember({"velocity", "x0"}))
      ->capture_default_str();
  init->add_option("--vocabulary", o.vocabulary, "Vocabulary file, one word per line (default: the shapes grammar)");
  auto* info = app.add_subcommand("info", "Describe a policy: kind, parameters, FLOPs per sample, digest");
  info->preparse_callback([&o](std::size_t) { o.command = ModelCommand::info; });
  add_policy_options(*info, o.policy, /*required=*/true);
  info->add_option("--trainable", o.trainable, "Count the parameters whose names match this regular expression");
  auto* exp = app.add_subcommand("export", "Export a policy's parameters as safetensors with their module names");
  exp->preparse_callback([&o](std::size_t) { o.command = ModelCommand::export_; });
  add_policy_options(*exp, o.policy, /*required=*/true);
  exp->add_option("--trainable", o.trainable, "Export only the parameters whose names match this regular expression");
  exp->add_option("--strip-prefix", o.export_names.strip_prefix,
                  "Remove this prefix (a wrapper's module path, e.g. net.transformer.) from every exported name");
  exp->add_flag("--peft-names", o.export_names.peft,
                "Drop the adapter name after lora_A/lora_B (...lora_A.default.weight -> ...lora_A.weight), as peft "
                "and diffusers LoRA files name them");
  auto* probe = app.add_subcommand("probe", "Denoising probe: held-out renders noised to sigma, the model's one-step "
                                   "prediction x0_hat = x_sigma - sigma v, its MSE per sigma and a grid");
  probe->preparse_callback([&o](std::size_t) { o.command = ModelCommand::probe; });
  add_policy_options(*probe, o.policy, /*required=*/true);
  probe->add_option("--count", o.probe_count, "Held-out renders")->check(CLI::PositiveNumber)->capture_default_str();
  probe->add_option("--sigmas", o.probe_sigmas, "Noise levels in (0, 1]")
      ->delimiter(',')->check(CLI::Range(1e-6, 1.0))->capture_default_str();
  probe->add_option("--grid", o.probe_grid, "Write the probe's image grid (PNG)");
}

void validate(const ModelOptions& o, const cli::Given& given) {
  // An explicit --seed is an error here; TREERPO_SEED in the environment is not.
  if (o.command != ModelCommand::init && o.command != ModelCommand::probe && given("--seed"))
    throw UsageError("--seed applies to init and probe only");
}

int run_model(const ModelOptions& o, cli::Context& ctx, const std::string& output) {
  if (o.command == ModelCommand::init) return run_init(o, ctx, output);
  auto policy = load_policy(o.policy, ctx);
  if (o.command == ModelCommand::probe) {
    if (output != "-") throw UsageError("probe prints to stdout; write its picture with --grid");
    return run_probe(*policy, o, ctx);
  }
  if (!o.trainable.empty()) policy->set_trainable(o.trainable);
  if (o.command == ModelCommand::info) {
    if (output != "-") throw UsageError("info prints to stdout; -o applies to init and export");
    print_info(describe(*policy), ctx.json);
    return 0;
  }
  cli::check_stdout_free(ctx, output);
  policy->export_safetensors(output, /*trainable_only=*/!o.trainable.empty(), ctx.force, o.export_names);
  log::summary("exported " + std::to_string(o.trainable.empty() ? policy->named_parameters().size()
                                                                  : policy->trainable_names().size()) +
               " tensors to " + (output == "-" ? std::string("<stdout>") : output));
  return 0;
}

cli::ToolSpec model_spec() {
  cli::ToolSpec spec;
  spec.name = "treerpo-model";
  spec.summary = "Create a built-in model checkpoint, describe a policy, or export its parameters as safetensors";
  spec.footer =
      "Example: treerpo-model init --seed 1 -o base.safetensors && treerpo-model info --policy base.safetensors";
  spec.common.output = spec.common.seed = true;
  // init draws its weights at random; the probe's noise is fixed (seed 0) so that figures compare.
  spec.seed_rule = [](const CLI::App& app) {
    return app.got_subcommand("probe") ? cli::SeedRule::zero : cli::SeedRule::random;
  };
  return cli::make_tool<ModelOptions>(spec, add_model_options, validate, run_model);
}

}  // namespace treerpo::tools
