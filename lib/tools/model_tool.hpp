// model_tool.hpp -- treerpo-model: create a built-in model checkpoint (init), describe any
// policy (info: kind, parameters, FLOPs, digest), export parameters as safetensors (export),
// probe a model's one-step denoising (probe).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/tool_main.hpp"
#include "model/builtin_dit.hpp"
#include "tools/policy_options.hpp"

namespace treerpo::tools {

enum class ModelCommand { init, info, export_, probe };

struct ModelOptions {
  ModelCommand command = ModelCommand::info;  ///< the subcommand given
  model::DitConfig config;
  std::string vocabulary;  ///< file: one word per line ("" = the shapes grammar's words)
  PolicyCliOptions policy;
  std::string trainable;   ///< regex of trainable parameters (info: count them; export: select them)
  model::ExportNames export_names;
  std::int64_t probe_count = 16;
  std::vector<double> probe_sigmas{0.3, 0.6, 0.9};
  std::string probe_grid;
};

void add_model_options(CLI::App& app, ModelOptions& o);
void validate(const ModelOptions& o, const cli::Given& given);
int run_model(const ModelOptions& o, cli::Context& ctx, const std::string& output);
cli::ToolSpec model_spec();

}  // namespace treerpo::tools
