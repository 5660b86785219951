// policy_options.cpp -- shared policy-loading options.
#include "tools/policy_options.hpp"

#include <CLI/CLI.hpp>
#include <torch/types.h>

#include "core/error.hpp"

namespace treerpo::tools {

void add_policy_options(CLI::App& app, PolicyCliOptions& o, bool required) {
  auto* p = app.add_option("--policy", o.path, "Policy: a treerpo checkpoint (.safetensors) or a TorchScript archive");
  if (required) p->required();
  app.add_option("--timestep-convention", o.timestep_convention,
                 "TorchScript policies: timestep the module takes, sigma or 1000sigma (default: its "
                 "treerpo_timestep attribute, else sigma)")
      ->check(CLI::IsMember({"sigma", "1000sigma"}));
  app.add_flag("--negate-output", o.negate_output, "TorchScript policies: the module returns the negated velocity");
  app.add_option("--latent-shape", o.latent_shape, "TorchScript policies: latent shape C,H,W (default: its "
                 "treerpo_latent_shape attribute)")
      ->delimiter(',');
  app.add_option("--dtype", o.dtype, "Precision the policy runs in: float32, bfloat16 or float16")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}))
      ->capture_default_str();
}

std::unique_ptr<model::Policy> load_policy(const PolicyCliOptions& o, const cli::Context& ctx) {
  model::PolicyOptions options;
  options.placement.device = torch::Device(ctx.device);
  options.placement.dtype = o.dtype == "bfloat16"  ? torch::kBFloat16
                            : o.dtype == "float16" ? torch::kHalf
                                                   : torch::kFloat;
  options.timestep_convention = o.timestep_convention;
  if (o.negate_output) options.negate_output = true;
  options.latent_shape = o.latent_shape;
  if (!options.latent_shape.empty() && options.latent_shape.size() != 3)
    throw UsageError("--latent-shape: expected C,H,W");
  return model::load_policy(o.path, options);
}

}  // namespace treerpo::tools
