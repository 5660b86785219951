// torchscript_policy.cpp -- TorchScript modules behind the Policy interface.
#include "model/torchscript_policy.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/atomic_output.hpp"
#include "core/error.hpp"
#include "core/text.hpp"

namespace treerpo::model {
namespace {
std::string string_attr(const torch::jit::Module& m, const char* name) {
  if (!m.hasattr(name)) return "";
  const auto v = m.attr(name);
  return v.isString() ? v.toStringRef() : "";
}

std::string shape_text(const torch::Tensor& t) { return t.defined() ? treerpo::shape_text(t.sizes().vec()) : "none"; }

// The line of a TorchScript interpreter error that says what failed (its last "...Error: " line;
// the rest is a traceback of the module's Python source).
std::string cause_of(const std::string& what) {
  std::string cause;
  std::size_t begin = 0;
  while (begin < what.size()) {
    const auto end = std::min(what.find('\n', begin), what.size());
    const auto line = what.substr(begin, end - begin);
    const auto at = line.find("Error: ");
    if (at != std::string::npos && line.find_first_of(" ") > at) cause = line.substr(at + 7);
    begin = end + 1;
  }
  return cause.empty() ? what.substr(0, what.find('\n')) : cause;
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
    throw UsageError(path +
                     ": latent shape unknown: give C,H,W or export the module with a treerpo_latent_shape attribute");
  if (module_.hasattr("treerpo_text_shape") && module_.attr("treerpo_text_shape").isIntList()) {
    text_shape_ = module_.attr("treerpo_text_shape").toIntVector();
    if (text_shape_.size() != 2) throw DataError(path + ": attribute treerpo_text_shape must be [tokens, dim]");
  }
  if (module_.hasattr("treerpo_pooled_dim") && module_.attr("treerpo_pooled_dim").isInt())
    pooled_dim_ = module_.attr("treerpo_pooled_dim").toInt();
  place(options.placement);
  if (placement_.dtype != torch::kFloat) check_forward_runs();
}

void TorchScriptPolicy::check_forward_runs() {
  if (text_shape_.empty() || (takes_pooled_ && pooled_dim_ <= 0)) return;  // sizes unknown until the prompts come
  torch::NoGradGuard no_grad;
  Conditioning c;
  c.hidden = torch::zeros({1, text_shape_[0], text_shape_[1]});
  if (takes_pooled_) c.pooled = torch::zeros({1, pooled_dim_});
  std::vector<std::int64_t> shape{1};
  shape.insert(shape.end(), latent_shape_.begin(), latent_shape_.end());
  velocity(torch::zeros(shape), torch::full({1}, 0.5), c);
}

void TorchScriptPolicy::check_conditioning(const Conditioning& c, const std::string& source) const {
  if (!text_shape_.empty() && c.hidden.defined() &&
      (c.hidden.dim() != 3 || c.hidden.size(1) != text_shape_[0] || c.hidden.size(2) != text_shape_[1]))
    throw DataError(source + ": /prompts/conditioning: embeddings " + shape_text(c.hidden) + " but " + path_ +
                    " takes [P, " + std::to_string(text_shape_[0]) + ", " + std::to_string(text_shape_[1]) +
                    "] (its treerpo_text_shape)");
  if (takes_pooled_ && !c.pooled.defined())
    throw DataError(source + ": /prompts/pooled: missing; the forward of " + path_ + " takes a pooled embedding");
  if (takes_pooled_ && pooled_dim_ > 0 && (c.pooled.dim() != 2 || c.pooled.size(1) != pooled_dim_))
    throw DataError(source + ": /prompts/pooled: " + shape_text(c.pooled) + " but " + path_ + " takes [P, " +
                    std::to_string(pooled_dim_) + "] (its treerpo_pooled_dim)");
}

DataError TorchScriptPolicy::forward_failure(const std::string& cause,
                                             const std::vector<torch::jit::IValue>& inputs) const {
  const std::string dtype = placement_.dtype == torch::kBFloat16 ? "bfloat16"
                            : placement_.dtype == torch::kHalf   ? "float16"
                                                                 : "float32";
  std::string hint;
  if (placement_.dtype != torch::kFloat &&
      (cause.find("dtype") != std::string::npos || cause.find("scalar type") != std::string::npos))
    hint = "; the archive was likely traced in float32, and a trace freezes .to(dtype) calls: trace it in " + dtype +
           " (or use type_as in the module)";
  else if (cause.find("shape") != std::string::npos || cause.find("size") != std::string::npos)
    hint = "; check the prompt file's embedding sizes against the model's text encoder";
  return DataError(path_ + ": forward failed in " + dtype + " on latents " + shape_text(inputs[0].toTensor()) +
                   ", embeddings " + shape_text(inputs[2].toTensor()) +
                   (takes_pooled_ ? ", pooled " + shape_text(inputs[3].toTensor()) : std::string()) + ": " + cause +
                   hint);
}

torch::Tensor TorchScriptPolicy::forward(std::vector<torch::jit::IValue> inputs) {
  try {
    auto out = module_.forward(inputs);
    if (!out.isTensor()) throw DataError(path_ + ": forward did not return a tensor");
    return out.toTensor();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw forward_failure(cause_of(e.what_without_backtrace()), inputs);
  } catch (const std::exception& e) {  // the interpreter's own errors
    throw forward_failure(cause_of(e.what()), inputs);
  }
}

torch::Tensor TorchScriptPolicy::velocity(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c) {
  if (!c.hidden.defined())
    throw UsageError(
        "a TorchScript policy needs precomputed text embeddings (an HDF5 prompt file with /prompts/conditioning)");
  const auto& d = placement_.device;
  const auto t = timestep_1000_ ? sigma.to(d, torch::kFloat) * 1000.0 : sigma.to(d, torch::kFloat);
  std::vector<torch::jit::IValue> inputs{x.to(d, placement_.dtype), t.to(placement_.dtype),
                                         c.hidden.to(d, placement_.dtype)};
  if (takes_pooled_) {
    if (!c.pooled.defined())
      throw UsageError(path_ + ": forward takes a pooled embedding; the prompt file has no /prompts/pooled");
    inputs.emplace_back(c.pooled.to(d, placement_.dtype));
  }
  auto v = forward(std::move(inputs));
  if (v.sizes() != x.sizes()) throw DataError(path_ + ": forward returned a tensor of another shape than the latents");
  return negate_ ? -v : v;
}

Conditioning TorchScriptPolicy::encode(const std::vector<std::string>&) const {
  throw UsageError("a TorchScript policy has no tokenizer: give precomputed embeddings in an HDF5 prompt file");
}

Conditioning TorchScriptPolicy::null_conditioning(std::int64_t batch, const Conditioning& like) const {
  // Exported pipelines encode the empty prompt; without it, zeros stand in (documented).
  Conditioning c;
  if (like.hidden.defined())
    c.hidden = torch::zeros({batch, like.hidden.size(1), like.hidden.size(2)}, like.hidden.options());
  if (like.pooled.defined()) c.pooled = torch::zeros({batch, like.pooled.size(1)}, like.pooled.options());
  // The mask is not passed to forward; it is kept so that null and prompt rows concatenate.
  if (like.mask.defined()) c.mask = torch::ones({batch, like.mask.size(1)}, like.mask.options());
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
