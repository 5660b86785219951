// shapes_tool.cpp -- the treerpo-shapes helper.
#include "tools/shapes_tool.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/choice.hpp"
#include "cli/summary.hpp"
#include "core/atomic_output.hpp"
#include "core/rng.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "format/dataset_file.hpp"
#include "format/samples_file.hpp"
#include "h5/dataset.hpp"
#include "h5/io.hpp"
#include "shapes/dataset.hpp"
#include "shapes/explain.hpp"

namespace treerpo::tools {
namespace {
std::string fixed(double v, int digits = 3) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// The (prompt, image) pairs of a samples file (one checkpoint's) or of a data set file.
std::vector<std::pair<std::string, shapes::Image>> labelled_images(const ShapesOptions& o, std::string& what) {
  h5::InputFile file = h5::open_input(o.input);
  const auto kind = h5::attr_string(file.file.get(), "treerpo_format", file.name);
  std::vector<std::pair<std::string, shapes::Image>> out;
  auto add = [&](const std::vector<std::string>& texts, std::uint64_t H, std::uint64_t W,
                 const std::vector<std::uint8_t>& rgb) {
    const std::size_t n = static_cast<std::size_t>(H * W * 3);
    for (std::size_t i = 0; i < texts.size(); ++i) {
      shapes::Image im{static_cast<int>(H), static_cast<int>(W), {}};
      im.rgb.assign(rgb.begin() + static_cast<std::ptrdiff_t>(i * n),
                    rgb.begin() + static_cast<std::ptrdiff_t>((i + 1) * n));
      out.emplace_back(texts[i], std::move(im));
    }
  };
  if (kind && *kind == format::kSamplesFormatName) {
    const auto s = format::read_samples(file);
    for (const auto& c : s.checkpoints)
      if (c.name == o.images) {
        add(s.text, c.height, c.width, c.rgb);
        what = o.images + " images of " + file.name + " (" + c.path + ")";
        return out;
      }
    throw DataError(file.name + ": /" + o.images + "/images: no such checkpoint in this samples file (--images)");
  }
  if (kind && *kind == format::kDatasetFormatName) {
    if (o.images != "policy") throw UsageError("--images applies to samples files; " + file.name + " is a data set");
    const auto d = format::read_dataset(file);
    add(d.prompts.text, d.images.shape.at(1), d.images.shape.at(2), d.images.data);
    what = "rendered images of the data set " + file.name;
    return out;
  }
  throw DataError(file.name + ": treerpo_format is '" + kind.value_or("") +
                  "', expected 'samples' (evaluate --samples-out) or 'dataset' (treerpo-shapes dataset)");
}

std::string explain_text(const std::vector<shapes::ExplainedImage>& all, const shapes::ExplainSummary& s,
                         const std::string& what, bool per_image) {
  std::string t = std::to_string(s.images) + " " + what + "\n";
  t += "strict " + fixed(s.strict) + "  partial " + fixed(s.partial) + "  geneval " + fixed(s.geneval) + "\n";
  t += "per image: " + fixed(s.named_per_image, 2) + " objects named, " + fixed(s.components_per_image, 2) +
       " components found\n";
  t += "why strict fails (the first reason that applies; share of the images):\n";
  const std::pair<const char*, const char*> reasons[] = {
      {"unrecognised", "a component is not a recognised object (fit, size or colour)"},
      {"count", "all recognised, but not as many as the named objects"},
      {"match", "as many, but shapes or colours do not pair with the named objects"},
      {"relation", "the right objects in the wrong relative position"},
      {"unparsed", "the prompt is not of the shapes grammar"},
      {"none", "strict: exactly the prompt's objects"}};
  for (const auto& [name, why] : reasons) {
    const auto it = s.failures.find(name);
    const double share =
        it == s.failures.end() || s.images == 0 ? 0.0 : static_cast<double>(it->second) / static_cast<double>(s.images);
    char line[160];
    std::snprintf(line, sizeof line, "  %-13s %6.3f  %s\n", name, share, why);
    t += line;
  }
  t += "components: " + std::to_string(s.components) + ", recognised " + std::to_string(s.recognised) +
       "; unrecognised: template fit below " + fixed(shapes::kMinFit, 2) + " " + std::to_string(s.low_fit) +
       ", size out of range " + std::to_string(s.bad_size) + ", off the palette " + std::to_string(s.off_palette) +
       "\n";
  if (s.fit_quantiles.size() == 3)
    t += "template fit of the palette components: 10 % " + fixed(s.fit_quantiles[0]) + ", median " +
         fixed(s.fit_quantiles[1]) + ", 90 % " + fixed(s.fit_quantiles[2]) + "\n";
  if (per_image)
    for (std::size_t i = 0; i < all.size(); ++i) {
      const auto& e = all[i];
      t += std::to_string(i) + "\t" + shapes::strict_failure_name(e.failure) + "\t" + e.prompt + "\t";
      for (std::size_t k = 0; k < e.found.size(); ++k) {
        const auto& d = e.found[k];
        if (k) t += "; ";
        t += d.in_palette ? std::string(shapes::color_name(d.color)) + " " + shapes::shape_name(d.shape)
                          : std::string("off-palette");
        t += " fit " + fixed(d.fit, 2) + " size " + fixed(d.size, 1) + (d.recognised ? "" : " (unrecognised)");
      }
      t += "\n";
    }
  return t;
}

nlohmann::json explain_json(const shapes::ExplainSummary& s, const std::string& what) {
  return {{"what", what},
          {"images", s.images},
          {"strict", s.strict},
          {"partial", s.partial},
          {"geneval", s.geneval},
          {"named_per_image", s.named_per_image},
          {"components_per_image", s.components_per_image},
          {"failures", s.failures},
          {"components", {{"total", s.components}, {"recognised", s.recognised}, {"low_fit", s.low_fit},
                          {"bad_size", s.bad_size}, {"off_palette", s.off_palette}}},
          {"fit_quantiles", s.fit_quantiles}};
}

void write_text(const std::string& output, const std::string& text, bool force) {
  if (output == "-") {
    std::fputs(text.c_str(), stdout);
    return;
  }
  AtomicOutput out(output, force, "treerpo-shapes", "text");
  write_text(out, text);
  out.commit();
}

int run_explain(const ShapesOptions& o, const cli::Context& ctx, const std::string& output) {
  std::string what;
  const auto inputs = labelled_images(o, what);
  std::vector<shapes::ExplainedImage> all;
  for (const auto& [prompt, image] : inputs) all.push_back(shapes::explain_image(prompt, image));
  const auto summary = shapes::summarise(all);
  if (ctx.json) std::printf("%s\n", explain_json(summary, what).dump(2).c_str());  // the text only to an -o file
  if (!ctx.json || output != "-") write_text(output, explain_text(all, summary, what, o.per_image), ctx.force);
  return 0;
}

// Rejection sampling: the images that pass the strict shapes reward become (prompt, image)
// pairs of a data set, the data of reward-filtered fine-tuning (RAFT; update --objective sft).
int run_select(const ShapesOptions& o, const cli::Context& ctx, const std::string& output) {
  cli::check_stdout_free(ctx, output);
  std::string what;
  const auto inputs = labelled_images(o, what);
  format::Dataset d;
  d.kind_labels = shapes::task_kind_names();
  std::map<std::string, std::size_t> kept_per_prompt;
  std::map<std::string, int> per_kind;
  std::uint64_t side = 0;
  for (const auto& [prompt, image] : inputs) {
    const auto spec = shapes::parse_prompt(prompt);
    if (!spec) throw DataError(o.input + ": prompt '" + prompt + "' is not of the shapes grammar");
    if (shapes::score_spec(*spec, shapes::detect(image)).strict < 1.0) continue;
    auto& kept = kept_per_prompt[prompt];
    if (o.per_prompt > 0 && kept >= o.per_prompt) continue;
    if (image.height != image.width)  // a data set holds square images, [N, S, S, 3]
      throw DataError(o.input + ": images of " + std::to_string(image.height) + "x" + std::to_string(image.width) +
                      " pixels; a data set needs square images");
    ++kept;
    side = static_cast<std::uint64_t>(image.height);
    d.prompts.text.push_back(prompt);
    d.prompts.id.push_back(static_cast<std::int64_t>(d.prompts.id.size()));
    d.images.data.insert(d.images.data.end(), image.rgb.begin(), image.rgb.end());
    d.kind.push_back(static_cast<std::uint8_t>(spec->kind));
    ++per_kind[shapes::task_kind_name(spec->kind)];
  }
  const auto n = d.prompts.text.size();
  if (n == 0)
    throw DataError("none of the " + std::to_string(inputs.size()) + " " + what +
                    " passes the strict shapes reward; no data set written");
  d.images.shape = {n, side, side, 3};
  d.provenance.push_back(ctx.provenance_record({}));
  format::write_dataset(output, d, ctx.force, ctx.tool);
  log::summary("kept " + std::to_string(n) + " of " + std::to_string(inputs.size()) + " " + what + " (" +
               std::to_string(kept_per_prompt.size()) + " prompts) in " +
               (output == "-" ? std::string("<stdout>") : output));
  if (ctx.json)
    cli::print_json_summary(ctx, output, {{"images", inputs.size()}, {"kept", n},
                                          {"prompts", kept_per_prompt.size()}, {"per_kind", per_kind}});
  return 0;
}

int run_prompts(const ShapesOptions& o, const cli::Context& ctx, const std::string& output) {
  const auto prompts = shapes::split_prompts(o.split);
  // By kind, or shuffled so that every block of consecutive lines (a --shard of the file, an
  // RL iteration's prompts) mixes the kinds; the order is keyed by the seed and the split alone.
  std::vector<std::int64_t> order(prompts.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  if (o.shuffle)
    order = rng::permutation(rng::derive_key(ctx.seed, rng::Domain::prompt_order, {static_cast<std::uint64_t>(o.split)}),
                             static_cast<std::int64_t>(prompts.size()));
  std::string text;
  std::map<std::string, int> per_kind;
  for (const auto i : order) {
    const auto& p = prompts[static_cast<std::size_t>(i)];
    text += shapes::prompt_text(p) + "\n";
    ++per_kind[shapes::task_kind_name(p.kind)];
  }
  if (ctx.json) cli::check_stdout_free(ctx, output);
  write_text(output, text, ctx.force);
  if (ctx.json) {
    nlohmann::ordered_json extra{{"split", shapes::split_name(o.split)}, {"per_kind", per_kind}};
    if (o.shuffle) extra["shuffle_seed"] = ctx.seed;
    cli::print_json_summary(ctx, output, extra);
  }
  return 0;
}

int run_dataset(const ShapesOptions& o, const cli::Context& ctx, const std::string& output) {
  cli::check_stdout_free(ctx, output);
  if (o.count < 1) throw UsageError("--count: must be >= 1");
  const auto samples = shapes::make_samples(o.split, o.count, o.image_size, ctx.seed);
  format::Dataset d;
  d.kind_labels = shapes::task_kind_names();
  const auto S = static_cast<std::uint64_t>(o.image_size);
  d.images.shape = {samples.size(), S, S, 3};
  std::map<std::string, int> per_kind;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    d.prompts.text.push_back(samples[i].text);
    d.prompts.id.push_back(static_cast<std::int64_t>(i));
    d.images.data.insert(d.images.data.end(), samples[i].image.rgb.begin(), samples[i].image.rgb.end());
    d.kind.push_back(static_cast<std::uint8_t>(samples[i].spec.kind));
    ++per_kind[shapes::task_kind_name(samples[i].spec.kind)];
  }
  d.provenance.push_back(ctx.provenance_record({}));
  format::write_dataset(output, d, ctx.force, ctx.tool);
  const std::string split = shapes::split_name(o.split);
  log::summary("wrote " + std::to_string(samples.size()) + " samples of the " + split + " split to " +
               (output == "-" ? std::string("<stdout>") : output));
  if (ctx.json)
    cli::print_json_summary(ctx, output, {{"split", split}, {"samples", samples.size()}, {"per_kind", per_kind}});
  return 0;
}
}  // namespace

void add_shapes_options(CLI::App& app, ShapesOptions& o) {
  app.require_subcommand(1);
  app.fallthrough();
  const std::vector<std::pair<std::string, shapes::Split>> splits{{"train", shapes::Split::train},
                                                                  {"heldout", shapes::Split::heldout}};
  auto* prompts = app.add_subcommand("prompts", "Write every prompt of a split, one per line");
  prompts->preparse_callback([&o](std::size_t) { o.command = ShapesCommand::prompts; });
  cli::add_choice(*prompts, "--split", o.split, splits, "train or heldout");
  prompts->add_flag("--shuffle", o.shuffle,
                    "In an order keyed by --seed (every block of lines mixes the kinds) instead of by kind");
  auto* dataset = app.add_subcommand("dataset", "Write a data set: prompts of a split with rendered images (HDF5)");
  dataset->preparse_callback([&o](std::size_t) { o.command = ShapesCommand::dataset; });
  cli::add_choice(*dataset, "--split", o.split, splits, "train or heldout");
  dataset->add_option("--count", o.count, "Samples, balanced over the six task kinds")->capture_default_str();
  dataset->add_option("--image-size", o.image_size, "Image side in pixels")
      ->check(CLI::Range(16, 512))
      ->capture_default_str();
  auto* explain = app.add_subcommand("explain", "Why images pass or fail the shapes reward: the first failing "
                                     "reason per image and the detector's components, summed");
  explain->preparse_callback([&o](std::size_t) { o.command = ShapesCommand::explain; });
  explain
      ->add_option("input", o.input, "A samples file (what evaluate writes for an external judge) or a data set file")
      ->required();
  explain->add_option("--images", o.images, "Which checkpoint's images of a samples file: policy or compare")
      ->check(CLI::IsMember({"policy", "compare"}))->capture_default_str();
  explain->add_flag("--per-image", o.per_image, "Also list every image's failure and components");
  auto* select = app.add_subcommand("select", "Write the images that pass the strict shapes reward as a data set "
                                    "(the data of reward-filtered fine-tuning)");
  select->preparse_callback([&o](std::size_t) { o.command = ShapesCommand::select; });
  select->add_option("input", o.input, "A samples file (what evaluate writes for an external judge) or a data set file")->required();
  select->add_option("--images", o.images, "Which checkpoint's images of a samples file: policy or compare")
      ->check(CLI::IsMember({"policy", "compare"}))->capture_default_str();
  select->add_option("--per-prompt", o.per_prompt, "Keep at most this many passing images per prompt (0 = all)")
      ->capture_default_str();
}

void validate(const ShapesOptions& o, const cli::Given& given) {
  const bool seeded = o.command == ShapesCommand::dataset || (o.command == ShapesCommand::prompts && o.shuffle);
  if (!seeded && given("--seed")) throw UsageError("--seed applies to dataset and prompts --shuffle only");
}

int run_shapes(const ShapesOptions& o, cli::Context& ctx, const std::string& output) {
  switch (o.command) {
    case ShapesCommand::explain: return run_explain(o, ctx, output);
    case ShapesCommand::select: return run_select(o, ctx, output);
    case ShapesCommand::prompts: return run_prompts(o, ctx, output);
    case ShapesCommand::dataset: break;
  }
  return run_dataset(o, ctx, output);
}

cli::ToolSpec shapes_spec() {
  cli::ToolSpec spec;
  spec.name = "treerpo-shapes";
  spec.summary = "Write prompt files and (prompt, image) data sets of the built-in shapes world";
  spec.footer = "Example: treerpo-shapes prompts --split heldout -o heldout.txt; see treerpo-shapes(1).";
  spec.common.output = spec.common.seed = true;
  return cli::make_tool<ShapesOptions>(spec, add_shapes_options, validate, run_shapes);
}

}  // namespace treerpo::tools
