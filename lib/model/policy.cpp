// policy.cpp -- what every policy shares: trainable subsets, digests, safetensors export,
// conditioning batches, and loading by file type.
#include "model/policy.hpp"

#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <regex>

#include "core/digest.hpp"
#include "core/error.hpp"
#include "format/safetensors.hpp"
#include "model/builtin_dit.hpp"
#include "model/torchscript_policy.hpp"

namespace treerpo::model {

std::int64_t Conditioning::batch() const {
  for (const auto* t : {&tokens, &hidden, &mask, &pooled})
    if (t->defined()) return t->size(0);
  return 0;
}

Conditioning Conditioning::slice(std::int64_t begin, std::int64_t end) const {
  Conditioning c;
  auto cut = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, begin, end - begin) : t; };
  c.tokens = cut(tokens);
  c.hidden = cut(hidden);
  c.mask = cut(mask);
  c.pooled = cut(pooled);
  return c;
}

Conditioning Conditioning::index_select(const torch::Tensor& rows) const {
  Conditioning c;
  auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, rows.to(t.device())) : t; };
  c.tokens = pick(tokens);
  c.hidden = pick(hidden);
  c.mask = pick(mask);
  c.pooled = pick(pooled);
  return c;
}

Conditioning Conditioning::cat(const std::vector<Conditioning>& parts) {
  Conditioning c;
  auto join = [&](torch::Tensor Conditioning::*member) {
    std::vector<torch::Tensor> ts;
    for (const auto& p : parts)
      if ((p.*member).defined()) ts.push_back(p.*member);
    if (ts.empty()) return torch::Tensor();
    if (ts.size() != parts.size()) throw Error(ExitCode::software, "Conditioning::cat: parts of different kinds");
    return torch::cat(ts, 0);
  };
  c.tokens = join(&Conditioning::tokens);
  c.hidden = join(&Conditioning::hidden);
  c.mask = join(&Conditioning::mask);
  c.pooled = join(&Conditioning::pooled);
  return c;
}

Conditioning Conditioning::to(const torch::Device& device) const {
  Conditioning c;
  auto move = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  c.tokens = move(tokens);
  c.hidden = move(hidden);
  c.mask = move(mask);
  c.pooled = move(pooled);
  return c;
}

Conditioning conditioning_for(const Policy& policy, const format::Prompts& prompts, std::size_t begin, std::size_t end,
                              const std::string& source) {
  if (policy.reads_text())
    return policy.encode(std::vector<std::string>(prompts.text.begin() + static_cast<std::ptrdiff_t>(begin),
                                                  prompts.text.begin() + static_cast<std::ptrdiff_t>(end)));
  if (!prompts.conditioning)
    throw DataError(source + ": /prompts/conditioning: missing; a " + policy.kind() +
                    " policy needs precomputed text embeddings (see treerpo-prompts(5))");
  auto rows = [&](const auto& a) {
    std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end());
    const std::int64_t row = shape[0] ? static_cast<std::int64_t>(a.data.size()) / shape[0] : 0;
    shape[0] = static_cast<std::int64_t>(end - begin);
    using T = typename std::decay_t<decltype(a.data)>::value_type;
    const auto dtype = std::is_same_v<T, float> ? torch::kFloat : torch::kByte;
    return torch::from_blob(const_cast<T*>(a.data.data()) + static_cast<std::int64_t>(begin) * row, shape, dtype)
        .clone();
  };
  Conditioning c;
  c.hidden = rows(*prompts.conditioning);
  if (prompts.mask) c.mask = rows(*prompts.mask).to(torch::kBool);
  if (prompts.pooled) c.pooled = rows(*prompts.pooled);
  policy.check_conditioning(c, source);
  return c;
}

std::size_t Policy::set_trainable(const std::string& regex) {
  std::regex re;
  try {
    re = std::regex(regex);
  } catch (const std::regex_error& e) {
    throw UsageError("trainable parameter pattern '" + regex + "' is not a valid regular expression");
  }
  std::size_t matched = 0;
  for (auto& [name, p] : named_parameters()) {
    const bool on = std::regex_search(name, re);
    p.set_requires_grad(on);
    matched += on ? 1 : 0;
  }
  if (matched == 0) throw UsageError("trainable parameter pattern '" + regex + "' matches no parameter");
  return matched;
}

const std::map<std::string, std::string>& Policy::metadata() const {
  static const std::map<std::string, std::string> none;
  return none;
}

const std::map<std::string, torch::Tensor>& Policy::extras() const {
  static const std::map<std::string, torch::Tensor> none;
  return none;
}

std::vector<torch::Tensor> Policy::trainable_parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& [name, p] : named_parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

std::vector<std::string> Policy::trainable_names() const {
  std::vector<std::string> out;
  for (const auto& [name, p] : named_parameters())
    if (p.requires_grad()) out.push_back(name);
  return out;
}

std::string exported_name(const std::string& name, const ExportNames& names) {
  std::string out = name;
  if (!names.strip_prefix.empty()) {
    if (out.compare(0, names.strip_prefix.size(), names.strip_prefix) != 0)
      throw UsageError("parameter " + name + " does not start with the prefix to strip, '" + names.strip_prefix + "'");
    out.erase(0, names.strip_prefix.size());
  }
  if (names.peft) {
    static const std::regex adapter(
        R"(\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)\.[^.]+\.)");
    out = std::regex_replace(out, adapter, ".$1.");
  }
  return out;
}

void Policy::export_safetensors(const std::string& path, bool trainable_only, bool force) const {
  export_safetensors(path, trainable_only, force, ExportNames{});
}

void Policy::export_safetensors(const std::string& path, bool trainable_only, bool force,
                                const ExportNames& names) const {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, p] : named_parameters()) {
    if (trainable_only && !p.requires_grad()) continue;
    const auto renamed = exported_name(name, names);
    if (!tensors.emplace(renamed, p).second)
      throw UsageError("two parameters would be exported as " + renamed + " (the renaming is ambiguous)");
  }
  std::map<std::string, std::string> metadata{{"treerpo_policy_kind", kind()}, {"treerpo_policy_digest", digest()}};
  if (!names.strip_prefix.empty()) metadata["treerpo_stripped_prefix"] = names.strip_prefix;
  if (names.peft) metadata["treerpo_names"] = "peft";
  write_tensors(path, tensors, metadata, force);
}

std::string Policy::digest() const {
  auto params = named_parameters();
  std::sort(params.begin(), params.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Sha256 h;
  for (const auto& [name, p] : params) {
    const auto c = p.detach().to(torch::kCPU).contiguous();
    const std::string head = name + "\n" + SafeTensorCodec::dtype_name(c.scalar_type()) + "\n" +
                             std::to_string(c.dim()) + "\n";
    h.update(head.data(), head.size());
    for (auto d : c.sizes()) h.update(&d, sizeof d);
    h.update(c.data_ptr(), static_cast<std::size_t>(c.numel()) * c.element_size());
  }
  return "sha256:" + h.hex();
}

std::string SafeTensorCodec::dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "F32";
    case torch::kHalf: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kDouble: return "F64";
    case torch::kLong: return "I64";
    case torch::kInt: return "I32";
    case torch::kShort: return "I16";
    case torch::kChar: return "I8";
    case torch::kByte: return "U8";
    case torch::kBool: return "BOOL";
    default: throw UsageError(std::string("no safetensors dtype for ") + c10::toString(t));
  }
}

torch::ScalarType SafeTensorCodec::scalar_type(const std::string& d) {
  if (d == "F32") return torch::kFloat;
  if (d == "F16") return torch::kHalf;
  if (d == "BF16") return torch::kBFloat16;
  if (d == "F64") return torch::kDouble;
  if (d == "I64") return torch::kLong;
  if (d == "I32") return torch::kInt;
  if (d == "I16") return torch::kShort;
  if (d == "I8") return torch::kChar;
  if (d == "U8") return torch::kByte;
  if (d == "BOOL") return torch::kBool;
  throw DataError("safetensors dtype " + d + " is not supported");
}

void write_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                   const std::map<std::string, std::string>& metadata, bool force) {
  format::SafeTensorsFile file;
  file.metadata = metadata;
  for (const auto& [name, t] : tensors) {
    const auto c = t.detach().to(torch::kCPU).contiguous();
    format::SafeTensor s;
    s.dtype = SafeTensorCodec::dtype_name(c.scalar_type());
    s.shape = c.sizes().vec();
    const auto* p = static_cast<const char*>(c.data_ptr());
    s.bytes.assign(p, p + c.numel() * static_cast<std::int64_t>(c.element_size()));
    file.tensors.emplace(name, std::move(s));
  }
  format::write_safetensors(path, file, force, "treerpo");
}

std::map<std::string, torch::Tensor> read_tensors(const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, s] : format::read_safetensors(path).tensors) {
    auto t = torch::empty(s.shape, torch::TensorOptions().dtype(SafeTensorCodec::scalar_type(s.dtype)));
    if (!s.bytes.empty()) std::memcpy(t.data_ptr(), s.bytes.data(), s.bytes.size());
    out.emplace(name, t);
  }
  return out;
}

std::unique_ptr<Policy> load_policy(const std::string& path, const PolicyOptions& options) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw NoInputError(with_errno(path, errno));
  char head[4] = {0, 0, 0, 0};
  f.read(head, 4);
  if (std::memcmp(head, "PK\x03\x04", 4) == 0) return std::make_unique<TorchScriptPolicy>(path, options);
  if (format::looks_like_safetensors(path)) return BuiltinPolicy::load(path, options.placement);
  throw DataError(path + ": not a policy (expected a treerpo safetensors checkpoint or a TorchScript archive)");
}

torch::Tensor guided_velocity(Policy& policy, const torch::Tensor& x, double sigma, const Conditioning& cond,
                              double guidance, std::int64_t max_rows) {
  return guided_velocity(policy, x, torch::full({x.size(0)}, sigma, torch::kFloat), cond, guidance, max_rows);
}

torch::Tensor guided_velocity(Policy& policy, const torch::Tensor& x, const torch::Tensor& sigma,
                              const Conditioning& cond, double guidance, std::int64_t max_rows) {
  if (max_rows < 1) throw std::invalid_argument("max batch must be >= 1");
  const bool guided = guidance != 1.0;
  const auto chunk = std::max<std::int64_t>(1, guided ? max_rows / 2 : max_rows);
  const auto B = x.size(0);
  const auto device = x.device();
  const auto sigma_rows = sigma.to(device, torch::kFloat);
  std::vector<torch::Tensor> parts;
  for (std::int64_t b = 0; b < B; b += chunk) {
    const auto e = std::min(B, b + chunk), n = e - b;
    auto c = cond.slice(b, e);
    auto xs = x.slice(0, b, e);
    auto ss = sigma_rows.slice(0, b, e);
    if (guided) {
      c = Conditioning::cat({c, policy.null_conditioning(n, c)});
      xs = torch::cat({xs, xs});
      ss = torch::cat({ss, ss});
    }
    const auto v = policy.velocity(xs, ss, c.to(device)).to(torch::kFloat);
    parts.push_back(guided ? v.slice(0, n, 2 * n) + guidance * (v.slice(0, 0, n) - v.slice(0, n, 2 * n)) : v);
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts);
}

torch::Tensor to_pixels(const torch::Tensor& latents) {
  if (latents.dim() != 4 || latents.size(1) != 3)
    throw std::invalid_argument("images need pixel-space latents [N, 3, H, W]");
  return ((latents.to(torch::kCPU, torch::kFloat) + 1.0) * 127.5)
      .round()
      .clamp(0, 255)
      .to(torch::kByte)
      .permute({0, 2, 3, 1})
      .contiguous();
}

}  // namespace treerpo::model
