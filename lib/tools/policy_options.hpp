// policy_options.hpp -- the options that load a policy, the same in every tool that takes one:
// --policy FILE plus the conventions a TorchScript export needs declared.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cli/context.hpp"
#include "model/policy.hpp"

namespace CLI { class App; }

namespace treerpo::tools {

struct PolicyCliOptions {
  std::string path;
  std::string timestep_convention;   ///< "", "sigma" or "1000sigma"
  bool negate_output = false;
  std::vector<std::int64_t> latent_shape;
  std::string dtype = "float32";
};

/// Adds --policy (required when `required`), --timestep-convention, --negate-output,
/// --latent-shape and --dtype.
void add_policy_options(CLI::App& app, PolicyCliOptions& o, bool required);

/// Loads the policy on ctx's device. \throws NoInputError, DataError, UsageError
std::unique_ptr<model::Policy> load_policy(const PolicyCliOptions& o, const cli::Context& ctx);

}  // namespace treerpo::tools
