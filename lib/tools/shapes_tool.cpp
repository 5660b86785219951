// shapes_tool.cpp -- the treerpo-shapes helper.
#include "tools/shapes_tool.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "core/atomic_output.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "format/dataset_file.hpp"
#include "shapes/dataset.hpp"

namespace treerpo::tools {
namespace {
struct ShapesOptions {
  std::string split = "train";
  std::size_t count = 600;
  int image_size = 32;
};

void write_text(const std::string& output, const std::string& text, bool force) {
  if (output == "-") {
    std::fputs(text.c_str(), stdout);
    return;
  }
  AtomicOutput out(output, force, "treerpo-shapes", "text");
  write_text(out, text);
  out.commit();
}
}  // namespace

cli::ToolSpec shapes_spec() {
  cli::ToolSpec spec;
  spec.name = "treerpo-shapes";
  spec.summary = "Write prompt files and (prompt, image) data sets of the built-in shapes world";
  spec.footer = "Example: treerpo-shapes prompts --split heldout -o heldout.txt; see treerpo-shapes(1).";
  spec.common.output = spec.common.seed = true;
  spec.setup = [](CLI::App& app, std::string& output) {
    auto o = std::make_shared<ShapesOptions>();
    app.require_subcommand(1);
    app.fallthrough();
    auto* prompts = app.add_subcommand("prompts", "Write every prompt of a split, one per line");
    prompts->add_option("--split", o->split, "train or heldout")->check(CLI::IsMember({"train", "heldout"}))->capture_default_str();
    auto* dataset = app.add_subcommand("dataset", "Write a data set: prompts of a split with rendered images (HDF5)");
    dataset->add_option("--split", o->split, "train or heldout")->check(CLI::IsMember({"train", "heldout"}))->capture_default_str();
    dataset->add_option("--count", o->count, "Samples, balanced over the six task kinds")->capture_default_str();
    dataset->add_option("--image-size", o->image_size, "Image side in pixels")->check(CLI::Range(16, 512))->capture_default_str();
    return [o, &output, prompts, dataset](cli::Context& ctx) -> int {
      const auto split = shapes::parse_split(o->split);
      if (prompts->parsed()) {
        if (cli::on_command_line(ctx, "--seed")) throw UsageError("--seed applies to dataset only");
        std::string text;
        std::map<std::string, int> per_kind;
        for (const auto& p : shapes::split_prompts(split)) {
          text += shapes::prompt_text(p) + "\n";
          ++per_kind[shapes::task_kind_name(p.kind)];
        }
        if (ctx.json) cli::check_stdout_free(ctx, output);
        write_text(output, text, ctx.force);
        if (ctx.json) std::printf("%s\n", nlohmann::json{{"split", o->split}, {"per_kind", per_kind}}.dump().c_str());
        return 0;
      }
      (void)dataset;
      cli::check_stdout_free(ctx, output);
      if (o->count < 1) throw UsageError("--count: must be >= 1");
      const auto samples = shapes::make_samples(split, o->count, o->image_size, ctx.seed);
      format::Dataset d;
      d.kind_labels = shapes::task_kind_names();
      const auto S = static_cast<std::uint64_t>(o->image_size);
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
      log::summary("wrote " + std::to_string(samples.size()) + " samples of the " + o->split + " split to " +
                   (output == "-" ? std::string("<stdout>") : output));
      if (ctx.json)
        std::printf("%s\n", nlohmann::json{{"split", o->split}, {"samples", samples.size()}, {"per_kind", per_kind}}.dump().c_str());
      return 0;
    };
  };
  return spec;
}

}  // namespace treerpo::tools
