// torchscript_policy.cpp -- TorchScript modules behind the Policy interface.
#include "model/torchscript_policy.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/atomic_output.hpp"
#include "core/error.hpp"

namespace treerpo::model {
namespace {
std::string string_attr(const torch::jit::Module& m, const char* name) {
  if (!m.hasattr(name)) return "";
  const auto v = m.attr(name);
  return v.isString() ? v.toStringRef() : "";
}
}  // namespace

TorchScriptPolicy::TorchScriptPolicy(const std::string& path, const PolicyOptions& options) : path_(path) {
  try {
    module_ = torch::jit::load(path);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw DataError(path + ": cannot load TorchScript module (" + what.substr(0, what.find('\n')) + ")");
  }
  const auto forward = module_.find_method("forward");
  if (!forward) throw DataError(path + ": TorchScript module has no forward method");
  const auto n_args = forward->function().getSchema().arguments().size();  // includes self
  if (n_args != 4 && n_args != 5)
    throw DataError(path + ": forward must take (latents, timestep, encoder_hidden_states[, pooled]), found " +
                    std::to_string(n_args - 1) + " arguments");
  takes_pooled_ = n_args == 5;

  std::string convention = options.timestep_convention.empty() ? string_attr(module_, "treerpo_timestep")
                                                                : options.timestep_convention;
  if (convention.empty()) convention = "sigma";
  if (convention != "sigma" && convention != "1000sigma")
    throw UsageError("timestep convention must be sigma or 1000sigma, got '" + convention + "'");
  timestep_1000_ = convention == "1000sigma";
  if (options.negate_output) {
    negate_ = *options.negate_output;
  } else {
    const std::string output = string_attr(module_, "treerpo_output");
    if (!output.empty() && output != "velocity" && output != "negative_velocity")
      throw DataError(path + ": attribute treerpo_output must be velocity or negative_velocity");
    negate_ = output == "negative_velocity";
  }
  latent_shape_ = options.latent_shape;
  if (latent_shape_.empty() && module_.hasattr("treerpo_latent_shape")) {
    const auto v = module_.attr("treerpo_latent_shape");
    if (v.isIntList()) latent_shape_ = v.toIntVector();
  }
  if (latent_shape_.size() != 3)
    throw UsageError(path + ": latent shape unknown: give C,H,W or export the module with a treerpo_latent_shape attribute");
  place(options.placement);
}

torch::Tensor TorchScriptPolicy::velocity(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c) {
  if (!c.hidden.defined())
    throw UsageError("a TorchScript policy needs precomputed text embeddings (an HDF5 prompt file with /prompts/conditioning)");
  const auto& d = placement_.device;
  const auto t = timestep_1000_ ? sigma.to(d, torch::kFloat) * 1000.0 : sigma.to(d, torch::kFloat);
  std::vector<torch::jit::IValue> inputs{x.to(d, placement_.dtype), t.to(placement_.dtype), c.hidden.to(d, placement_.dtype)};
  if (takes_pooled_) {
    if (!c.pooled.defined()) throw UsageError(path_ + ": forward takes a pooled embedding; the prompt file has no /prompts/pooled");
    inputs.emplace_back(c.pooled.to(d, placement_.dtype));
  }
  auto out = module_.forward(inputs);
  if (!out.isTensor()) throw DataError(path_ + ": forward did not return a tensor");
  auto v = out.toTensor();
  if (v.sizes() != x.sizes()) throw DataError(path_ + ": forward returned a tensor of another shape than the latents");
  return negate_ ? -v : v;
}

Conditioning TorchScriptPolicy::encode(const std::vector<std::string>&) const {
  throw UsageError("a TorchScript policy has no tokenizer: give precomputed embeddings in an HDF5 prompt file");
}

Conditioning TorchScriptPolicy::null_conditioning(std::int64_t batch, const Conditioning& like) const {
  // Exported pipelines encode the empty prompt; without it, zeros stand in (documented).
  Conditioning c;
  if (like.hidden.defined()) c.hidden = torch::zeros({batch, like.hidden.size(1), like.hidden.size(2)}, like.hidden.options());
  if (like.pooled.defined()) c.pooled = torch::zeros({batch, like.pooled.size(1)}, like.pooled.options());
  return c;
}

void TorchScriptPolicy::place(const Placement& p) {
  module_.to(p.device, p.dtype);
  placement_ = p;
}

std::vector<std::pair<std::string, torch::Tensor>> TorchScriptPolicy::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : module_.named_parameters(/*recurse=*/true)) out.emplace_back(item.name, item.value);
  return out;
}

void TorchScriptPolicy::save(const std::string& path, bool force, const std::map<std::string, torch::Tensor>& extra,
                             const std::map<std::string, std::string>& metadata) const {
  AtomicOutput out(path, force, "treerpo", "TorchScript");
  try {
    module_.save(out.temp_path());
  } catch (const c10::Error& e) {
    throw IoError(out.name() + ": cannot save TorchScript module (" + std::string(e.what_without_backtrace()) + ")");
  }
  out.commit();
  if (!extra.empty()) {
    if (path == "-") throw UsageError("extra tensors of a TorchScript policy need a named output");
    std::map<std::string, std::string> meta = metadata;
    meta["treerpo_extra_of"] = path;
    write_tensors(path + ".extra.safetensors", extra, meta, force);
  }
}

}  // namespace treerpo::model
