// builtin_dit.cpp -- the built-in diffusion transformer and its checkpoint format.
#include "model/builtin_dit.hpp"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "format/safetensors.hpp"
#include "treerpo/build_info.hpp"

namespace treerpo::model {
namespace {
namespace F = torch::nn::functional;

torch::Tensor layer_norm(const torch::Tensor& x) {  // no affine: adaLN supplies scale and shift
  return F::layer_norm(x, F::LayerNormFuncOptions({x.size(-1)}).eps(1e-6));
}

// x (1 + scale) + shift in one pass over x (addcmul) rather than two.
torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift, const torch::Tensor& scale) {
  return torch::addcmul(shift.unsqueeze(1), x, 1 + scale.unsqueeze(1));
}

// The gated residual x + gate y, in one pass.
torch::Tensor gated_add(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& y) {
  return torch::addcmul(x, gate.unsqueeze(1), y);
}

constexpr double kGeluC = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluK = 0.044715;

// sigmoid(2 c (x + k x^3)) in place of a new tensor: four passes and a sigmoid.
torch::Tensor gelu_gate(const torch::Tensor& x) {
  auto s = x.square();
  s.mul_(2 * kGeluC * kGeluK).add_(2 * kGeluC).mul_(x).sigmoid_();
  return s;
}

struct GeluTanh : torch::autograd::Function<GeluTanh> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    auto gate = gelu_gate(x);
    ctx->save_for_backward({x, gate});
    return gate * x;
  }
  // d/dx [x s(u)] = s + x s (1 - s) u', u = 2 c (x + k x^3), u' = 2 c (1 + 3 k x^2).
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& s = saved[1];
    auto d = x.square();
    d.mul_(6 * kGeluC * kGeluK).add_(2 * kGeluC).mul_(x).mul_(s);
    d.addcmul_(d, s, -1.0).add_(s).mul_(grad[0]);
    return {d};
  }
};
}  // namespace

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  if (x.scalar_type() != torch::kFloat && x.scalar_type() != torch::kDouble) return torch::gelu(x, "tanh");
  if (torch::GradMode::is_enabled() && x.requires_grad()) return GeluTanh::apply(x);
  auto y = gelu_gate(x);
  y.mul_(x);
  return y;
}

namespace {
torch::nn::Linear zero_linear(std::int64_t in, std::int64_t out) {
  torch::nn::Linear l(in, out);
  torch::NoGradGuard guard;
  l->weight.zero_();
  l->bias.zero_();
  return l;
}

// Sinusoidal embedding of the timestep 1000 sigma (the DiT / SD3 convention).
torch::Tensor timestep_embedding(const torch::Tensor& sigma, std::int64_t dim) {
  const std::int64_t half = dim / 2;
  const auto freqs = torch::exp(-std::log(10000.0) *
                                torch::arange(half, sigma.options().dtype(torch::kFloat)) / static_cast<double>(half));
  const auto args = (sigma.to(torch::kFloat) * 1000.0).unsqueeze(1) * freqs.unsqueeze(0);
  return torch::cat({torch::cos(args), torch::sin(args)}, 1);
}

// Multi-head scaled dot-product attention with masked keys: qkv [3, B, heads, T, hd],
// key_mask [B, T] bool -> [B, T, heads * hd].
torch::Tensor masked_attention(const torch::Tensor& qkv, const torch::Tensor& key_mask) {
  const std::int64_t B = qkv.size(1), H = qkv.size(2), T = qkv.size(3), hd = qkv.size(4);
  auto scores = torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(static_cast<double>(hd));
  scores = scores.masked_fill(key_mask.logical_not().view({B, 1, 1, T}), -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), qkv[2]).transpose(1, 2).reshape({B, T, H * hd});
}

// Fixed 1D sin-cos embedding of positions 0..n-1 (the Transformer's): D/2 frequencies, sin
// then cos, so each row has norm sqrt(D/2).
torch::Tensor sincos_1d(std::int64_t n, std::int64_t D) {
  const std::int64_t half = D / 2;
  const auto omega = torch::pow(10000.0, -torch::arange(half, torch::kDouble) / static_cast<double>(half));
  const auto angles = torch::outer(torch::arange(n, torch::kDouble), omega);  // [n, D/2]
  return torch::cat({torch::sin(angles), torch::cos(angles)}, 1);             // [n, D], float64
}

// Fixed 2D sin-cos position embedding of a g x g token grid (MAE / DiT): the first half of
// the width encodes the row, the second the column, each as 1D sin-cos over W/4 frequencies.
torch::Tensor sincos_2d(std::int64_t g, std::int64_t W) {
  const auto one_d = sincos_1d(g, W / 2);  // [g, W/2]
  const auto rows = one_d.unsqueeze(1).expand({g, g, W / 2});
  const auto cols = one_d.unsqueeze(0).expand({g, g, W / 2});
  return torch::cat({rows, cols}, 2).reshape({1, g * g, W}).to(torch::kFloat);
}

std::string get_string(const nlohmann::json& j, const char* key, const std::string& fallback,
                       const std::string& where) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_string()) throw DataError(where + ": config field " + key + " must be a string");
  return j[key].get<std::string>();
}

std::int64_t get_int(const nlohmann::json& j, const char* key, std::int64_t fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_number_integer()) throw DataError(where + ": config field " + key + " must be an integer");
  return j[key].get<std::int64_t>();
}
}  // namespace

void DitConfig::validate() const {
  auto positive = [](std::int64_t v, const char* name) {
    if (v < 1) throw UsageError(std::string("model config: ") + name + " must be >= 1");
  };
  positive(image_size, "image_size");
  positive(channels, "channels");
  positive(patch, "patch");
  positive(width, "width");
  positive(depth, "depth");
  positive(heads, "heads");
  positive(mlp_ratio, "mlp_ratio");
  positive(max_text_tokens, "max_text_tokens");
  if (image_size % patch) throw UsageError("model config: image_size must be a multiple of patch");
  if (width % heads) throw UsageError("model config: width must be a multiple of heads");
  if (width % 2) throw UsageError("model config: width must be even");
  if (pos_embed != "sincos" && pos_embed != "learned")
    throw UsageError("model config: pos_embed must be sincos or learned");
  if (pos_embed == "sincos" && width % 4)
    throw UsageError("model config: sincos positions need a width divisible by 4");
  if (text_pos_embed != "sincos" && text_pos_embed != "learned")
    throw UsageError("model config: text_pos_embed must be sincos or learned");
  if (out_conv < 0) throw UsageError("model config: out_conv must be >= 0");
  if (text_layers < 0) throw UsageError("model config: text_layers must be >= 0");
  if (text_pool != "mean" && text_pool != "none") throw UsageError("model config: text_pool must be mean or none");
  if (prediction != "velocity" && prediction != "x0")
    throw UsageError("model config: prediction must be velocity or x0");
}

std::string DitConfig::to_json() const {
  return nlohmann::ordered_json{{"image_size", image_size}, {"channels", channels}, {"patch", patch},
                                {"width", width},           {"depth", depth},       {"heads", heads},
                                {"mlp_ratio", mlp_ratio},   {"max_text_tokens", max_text_tokens},
                                {"pos_embed", pos_embed},   {"text_pos_embed", text_pos_embed},
                                {"text_layers", text_layers}, {"text_pool", text_pool},
                                {"out_conv", out_conv},
                                {"prediction", prediction}}
      .dump();
}

DitConfig DitConfig::from_json(const std::string& text, const std::string& where) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw DataError(where + ": model config is not a JSON object");
  DitConfig c;
  c.image_size = get_int(j, "image_size", c.image_size, where);
  c.channels = get_int(j, "channels", c.channels, where);
  c.patch = get_int(j, "patch", c.patch, where);
  c.width = get_int(j, "width", c.width, where);
  c.depth = get_int(j, "depth", c.depth, where);
  c.heads = get_int(j, "heads", c.heads, where);
  c.mlp_ratio = get_int(j, "mlp_ratio", c.mlp_ratio, where);
  c.max_text_tokens = get_int(j, "max_text_tokens", c.max_text_tokens, where);
  // Checkpoints written before these fields existed are the pre-1.1 architecture.
  c.pos_embed = get_string(j, "pos_embed", "learned", where);
  c.text_pos_embed = get_string(j, "text_pos_embed", "learned", where);  // before 1.3
  c.text_layers = get_int(j, "text_layers", 0, where);
  c.text_pool = get_string(j, "text_pool", "mean", where);
  c.out_conv = get_int(j, "out_conv", 0, where);
  c.prediction = get_string(j, "prediction", "velocity", where);
  try {
    c.validate();
  } catch (const UsageError& e) {
    throw DataError(where + ": " + e.what());
  }
  return c;
}

double DitConfig::flops_per_sample() const {
  const double N = static_cast<double>(image_tokens()), L = static_cast<double>(max_text_tokens), T = N + L;
  const double W = static_cast<double>(width), P = static_cast<double>(channels * patch * patch);
  const double M = static_cast<double>(mlp_ratio) * W;
  double f = 2 * N * P * W;                                      // patch embedding
  f += 2 * (2 * W * W) + (text_pool == "mean" ? 2 * W * W : 0.0);  // timestep MLP + text pooling
  const double block = 2 * (2 * W * 6 * W)                       // two adaLN modulations
                       + 2 * T * W * 3 * W + 2 * T * W * W       // qkv and output projections
                       + 2 * 2 * T * T * W                       // scores and weighted sum
                       + 2 * T * 2 * W * M;                      // MLPs
  f += static_cast<double>(depth) * block;
  f += static_cast<double>(text_layers) * (2 * L * W * 4 * W + 2 * 2 * L * L * W + 2 * L * 2 * W * M);  // text encoder
  const double out_channels = static_cast<double>(out_conv > 0 ? out_conv : channels);
  f += 2 * (W * 2 * W) + 2 * N * W * out_channels * static_cast<double>(patch * patch);  // final modulation, output
  if (out_conv > 0)                                                                       // 3x3 smoothing conv
    f += 2 * static_cast<double>(image_size * image_size) * out_channels * static_cast<double>(channels) * 9;
  return f;
}

JointBlockImpl::JointBlockImpl(std::int64_t width, std::int64_t heads_, std::int64_t mlp_ratio) : heads(heads_) {
  img_mod = register_module("img_mod", zero_linear(width, 6 * width));  // adaLN-zero: blocks start as identity
  txt_mod = register_module("txt_mod", zero_linear(width, 6 * width));
  img_qkv = register_module("img_qkv", torch::nn::Linear(width, 3 * width));
  txt_qkv = register_module("txt_qkv", torch::nn::Linear(width, 3 * width));
  img_proj = register_module("img_proj", torch::nn::Linear(width, width));
  txt_proj = register_module("txt_proj", torch::nn::Linear(width, width));
  img_fc1 = register_module("img_fc1", torch::nn::Linear(width, mlp_ratio * width));
  img_fc2 = register_module("img_fc2", torch::nn::Linear(mlp_ratio * width, width));
  txt_fc1 = register_module("txt_fc1", torch::nn::Linear(width, mlp_ratio * width));
  txt_fc2 = register_module("txt_fc2", torch::nn::Linear(mlp_ratio * width, width));
}

std::pair<torch::Tensor, torch::Tensor> JointBlockImpl::forward(const torch::Tensor& img, const torch::Tensor& txt,
                                                                const torch::Tensor& c, const torch::Tensor& key_mask) {
  const auto silu_c = torch::silu(c);
  const auto im = img_mod(silu_c).chunk(6, 1), tm = txt_mod(silu_c).chunk(6, 1);
  const std::int64_t B = img.size(0), N = img.size(1), L = txt.size(1), W = img.size(2), hd = W / heads;
  // Joint attention: one softmax over image and text keys, separate weights per stream.
  const auto qkv = torch::cat({img_qkv(modulate(layer_norm(img), im[0], im[1])),
                               txt_qkv(modulate(layer_norm(txt), tm[0], tm[1]))},
                              1)
                       .view({B, N + L, 3, heads, hd})
                       .permute({2, 0, 3, 1, 4});  // [3, B, heads, T, hd]
  const auto attn = masked_attention(qkv, key_mask);
  auto img_out = gated_add(img, im[2], img_proj(attn.narrow(1, 0, N)));
  auto txt_out = gated_add(txt, tm[2], txt_proj(attn.narrow(1, N, L)));
  img_out = gated_add(img_out, im[5], img_fc2(gelu_tanh(img_fc1(modulate(layer_norm(img_out), im[3], im[4])))));
  txt_out = gated_add(txt_out, tm[5], txt_fc2(gelu_tanh(txt_fc1(modulate(layer_norm(txt_out), tm[3], tm[4])))));
  return {img_out, txt_out};
}

TextLayerImpl::TextLayerImpl(std::int64_t width, std::int64_t heads_, std::int64_t mlp_ratio) : heads(heads_) {
  qkv = register_module("qkv", torch::nn::Linear(width, 3 * width));
  proj = register_module("proj", torch::nn::Linear(width, width));
  fc1 = register_module("fc1", torch::nn::Linear(width, mlp_ratio * width));
  fc2 = register_module("fc2", torch::nn::Linear(mlp_ratio * width, width));
}

torch::Tensor TextLayerImpl::forward(const torch::Tensor& txt, const torch::Tensor& mask) {
  const std::int64_t B = txt.size(0), L = txt.size(1), W = txt.size(2), hd = W / heads;
  const auto q_k_v = qkv(layer_norm(txt)).view({B, L, 3, heads, hd}).permute({2, 0, 3, 1, 4});  // [3, B, h, L, hd]
  const auto x = txt + proj(masked_attention(q_k_v, mask));
  return x + fc2(gelu_tanh(fc1(layer_norm(x))));
}

DitImpl::DitImpl(const DitConfig& c, std::int64_t vocab_size) : config(c) {
  c.validate();
  const std::int64_t W = c.width, P = c.channels * c.patch * c.patch;
  patch_embed = register_module("patch_embed", torch::nn::Linear(P, W));
  time_fc1 = register_module("time_fc1", torch::nn::Linear(W, W));
  time_fc2 = register_module("time_fc2", torch::nn::Linear(W, W));
  token_embed = register_module("token_embed", torch::nn::Embedding(vocab_size, W));
  if (c.text_pool == "mean") text_pool = register_module("text_pool", torch::nn::Linear(W, W));
  if (c.pos_embed == "sincos")  // fixed, so a buffer: recomputed from the config, never trained or stored
    image_pos = register_buffer("image_pos", sincos_2d(c.image_size / c.patch, W));
  else
    image_pos = register_parameter("image_pos", torch::randn({1, c.image_tokens(), W}) * 0.02);
  if (c.text_pos_embed == "sincos")  // fixed at the word embeddings' scale (norm sqrt(W/2) against sqrt(W))
    text_pos = register_buffer("text_pos", sincos_1d(c.max_text_tokens, W).unsqueeze(0).to(torch::kFloat));
  else
    text_pos = register_parameter("text_pos", torch::randn({1, c.max_text_tokens, W}) * 0.02);
  text_encoder = register_module("text_encoder", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.text_layers; ++i) text_encoder->push_back(TextLayer(W, c.heads, c.mlp_ratio));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.depth; ++i) blocks->push_back(JointBlock(W, c.heads, c.mlp_ratio));
  final_mod = register_module("final_mod", zero_linear(W, 2 * W));
  const std::int64_t out_channels = c.out_conv > 0 ? c.out_conv : c.channels;
  final_out = register_module("final_out", zero_linear(W, out_channels * c.patch * c.patch));
  if (c.out_conv > 0)
    smooth =
        register_module("smooth", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.out_conv, c.channels, 3).padding(1)));
}

torch::Tensor DitImpl::forward(const torch::Tensor& x, const torch::Tensor& sigma, const torch::Tensor& tokens,
                               const torch::Tensor& mask) {
  const std::int64_t B = x.size(0), C = config.channels, p = config.patch, g = config.image_size / p;
  const std::int64_t L = tokens.size(1), W = config.width;
  // [B, C, H, W] -> [B, N, C p p]
  auto patches = x.view({B, C, g, p, g, p}).permute({0, 2, 4, 1, 3, 5}).reshape({B, g * g, C * p * p});
  auto img = patch_embed(patches) + image_pos;
  auto txt = token_embed(tokens) + text_pos.narrow(1, 0, L);
  for (const auto& module : *text_encoder) txt = module->as<TextLayer>()->forward(txt, mask);
  auto c = time_fc2(torch::silu(time_fc1(timestep_embedding(sigma, W).to(img.scalar_type()))));
  if (text_pool) {
    const auto maskf = mask.to(txt.scalar_type()).unsqueeze(2);
    c = c + text_pool((txt * maskf).sum(1) / maskf.sum(1).clamp_min(1.0));
  }
  const auto key_mask = torch::cat({torch::ones({B, img.size(1)}, mask.options()), mask}, 1);
  for (const auto& module : *blocks) std::tie(img, txt) = module->as<JointBlock>()->forward(img, txt, c, key_mask);
  const auto fm = final_mod(torch::silu(c)).chunk(2, 1);
  const auto out = final_out(modulate(layer_norm(img), fm[0], fm[1]));  // [B, N, Co p p]
  const std::int64_t Co = out.size(2) / (p * p);
  const auto map = out.view({B, g, g, Co, p, p}).permute({0, 3, 1, 4, 2, 5}).reshape({B, Co, g * p, g * p});
  const auto y = config.out_conv > 0 ? smooth(map) : map;
  if (config.prediction == "velocity") return y;
  // x0 prediction: the velocity that carries x to the predicted image in the remaining sigma;
  // the floor keeps the last steps finite (JiT's clip of t at 0.05).
  return (x - y) / sigma.to(y.scalar_type()).clamp_min(0.05).view({B, 1, 1, 1});
}

BuiltinPolicy::BuiltinPolicy(const DitConfig& config, Tokenizer tokenizer, std::uint64_t seed)
    : config_(config), tokenizer_(std::move(tokenizer)) {
  torch::manual_seed(seed);
  net_ = Dit(config_, static_cast<std::int64_t>(tokenizer_.size()));
}

torch::Tensor BuiltinPolicy::velocity(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c) {
  if (!c.tokens.defined()) throw UsageError("the built-in model is conditioned on prompt text (token ids)");
  const auto& d = placement_.device;
  auto mask = c.mask.defined() ? c.mask : torch::ones(c.tokens.sizes(), torch::kBool);
  return net_->forward(x.to(d, placement_.dtype), sigma.to(d, torch::kFloat), c.tokens.to(d), mask.to(d));
}

Conditioning BuiltinPolicy::encode(const std::vector<std::string>& prompts) const {
  const auto B = static_cast<std::int64_t>(prompts.size()), L = config_.max_text_tokens;
  Conditioning c;
  c.tokens = torch::full({B, L}, Tokenizer::kPad, torch::kLong);
  c.mask = torch::zeros({B, L}, torch::kBool);
  for (std::int64_t b = 0; b < B; ++b) {
    auto ids = tokenizer_.encode(prompts[static_cast<std::size_t>(b)], static_cast<std::size_t>(L));
    if (ids.empty()) ids.push_back(Tokenizer::kNull);  // an empty prompt is the null prompt
    for (std::size_t i = 0; i < ids.size(); ++i) {
      c.tokens[b][static_cast<std::int64_t>(i)] = ids[i];
      c.mask[b][static_cast<std::int64_t>(i)] = true;
    }
  }
  return c;
}

Conditioning BuiltinPolicy::null_conditioning(std::int64_t batch, const Conditioning&) const {
  return encode(std::vector<std::string>(static_cast<std::size_t>(batch), ""));
}

std::vector<std::int64_t> BuiltinPolicy::latent_shape() const {
  return {config_.channels, config_.image_size, config_.image_size};
}

void BuiltinPolicy::place(const Placement& p) {
  net_->to(p.device, p.dtype);
  placement_ = p;
}

std::vector<std::pair<std::string, torch::Tensor>> BuiltinPolicy::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : net_->named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

std::optional<Policy::Architecture> BuiltinPolicy::architecture() const {
  return Architecture{config_.to_json(), static_cast<std::int64_t>(tokenizer_.size()), config_.flops_per_sample()};
}

std::int64_t BuiltinPolicy::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& p : net_->parameters()) n += p.numel();
  return n;
}

void BuiltinPolicy::save(const std::string& path, bool force, const std::map<std::string, torch::Tensor>& extra,
                         const std::map<std::string, std::string>& metadata) const {
  std::map<std::string, torch::Tensor> tensors(extra.begin(), extra.end());
  for (const auto& [name, t] : named_parameters()) {
    if (extra.count(name)) throw Error(ExitCode::software, "checkpoint: extra tensor " + name + " shadows a weight");
    tensors[name] = t;
  }
  std::map<std::string, std::string> meta = metadata;
  meta["treerpo_model"] = "builtin-dit";
  meta["config"] = config_.to_json();
  meta["vocabulary"] = nlohmann::json(tokenizer_.vocabulary()).dump();
  meta["treerpo_version"] = build::kVersion;
  meta["digest"] = digest();
  write_tensors(path, tensors, meta, force);
}

namespace {
torch::Tensor tensor_of(const format::SafeTensor& s) {
  auto t = torch::empty(s.shape, torch::TensorOptions().dtype(SafeTensorCodec::scalar_type(s.dtype)));
  if (!s.bytes.empty()) std::memcpy(t.data_ptr(), s.bytes.data(), s.bytes.size());
  return t;
}
}  // namespace

std::unique_ptr<BuiltinPolicy> BuiltinPolicy::load(const std::string& path, const Placement& placement) {
  const auto file = format::read_safetensors(path);
  auto meta = [&](const char* key) {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw DataError(path + ": __metadata__ lacks " + key + " (not a treerpo built-in checkpoint)");
    return it->second;
  };
  if (meta("treerpo_model") != "builtin-dit")
    throw DataError(path + ": __metadata__ treerpo_model is '" + meta("treerpo_model") + "', expected 'builtin-dit'");
  const auto config = DitConfig::from_json(meta("config"), path);
  const auto vocab = nlohmann::json::parse(meta("vocabulary"), nullptr, false);
  if (!vocab.is_array() || vocab.size() < 3) throw DataError(path + ": __metadata__ vocabulary is not a list of words");
  std::vector<std::string> words;
  for (std::size_t i = 3; i < vocab.size(); ++i) words.push_back(vocab[i].get<std::string>());
  std::unique_ptr<BuiltinPolicy> policy;
  try {
    policy = std::make_unique<BuiltinPolicy>(config, Tokenizer(words), 0);
  } catch (const std::invalid_argument& e) {
    throw DataError(path + ": " + e.what());
  }
  {
    torch::NoGradGuard guard;
    std::set<std::string> weights;
    for (auto& [name, param] : policy->named_parameters()) {
      weights.insert(name);
      auto it = file.tensors.find(name);
      if (it == file.tensors.end()) throw DataError(path + ": tensor " + name + " missing");
      const auto t = tensor_of(it->second);
      if (t.sizes() != param.sizes())
        throw DataError(path + ": tensor " + name + ": shape does not match the config");
      param.copy_(t);
    }
    for (const auto& [name, t] : file.tensors)
      if (!weights.count(name)) policy->extras_[name] = tensor_of(t);
  }
  policy->metadata_ = file.metadata;
  policy->place(placement);
  return policy;
}

}  // namespace treerpo::model
