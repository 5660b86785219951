// shapes_tool.hpp -- treerpo-shapes: prompt files and supervised data sets of the built-in
// shapes world (train and held-out splits share no prompt), why images pass or fail, and the
// passing images of sampled ones as a data set (reward-filtered fine-tuning).
#pragma once
#include <cstddef>
#include <string>

#include "cli/tool_main.hpp"
#include "shapes/dataset.hpp"

namespace treerpo::tools {

enum class ShapesCommand { prompts, dataset, explain, select };

struct ShapesOptions {
  ShapesCommand command = ShapesCommand::prompts;  ///< the subcommand given
  shapes::Split split = shapes::Split::train;
  std::size_t count = 600;
  int image_size = 32;
  std::string input;              ///< explain, select: a samples or data set file
  std::string images = "policy";  ///< explain, select: which checkpoint's images of a samples file
  std::size_t per_prompt = 0;     ///< select: keep at most this many passing images per prompt; 0 = all
  bool per_image = false;
  bool shuffle = false;           ///< prompts: in an order keyed by the seed instead of by kind
};

void add_shapes_options(CLI::App& app, ShapesOptions& o);
void validate(const ShapesOptions& o, const cli::Given& given);
int run_shapes(const ShapesOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec shapes_spec();

}  // namespace treerpo::tools
