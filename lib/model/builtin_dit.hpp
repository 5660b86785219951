// builtin_dit.hpp -- the built-in policy: a small diffusion transformer in native libtorch,
// shaped like the models users tune (patch embedding, adaLN-zero timestep conditioning, joint
// attention between image and text tokens as in MMDiT), with a word-level tokenizer, a
// learned text embedding and a null prompt for classifier-free guidance. One safetensors file
// holds weights, config and vocabulary.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <nlohmann/json_fwd.hpp>

#include "model/policy.hpp"
#include "model/tokenizer.hpp"

namespace treerpo::model {

/// The tanh-approximate GELU 0.5 x (1 + tanh(c (x + 0.044715 x^3))), c = sqrt(2 / pi), computed as
/// x sigmoid(2 c (x + 0.044715 x^3)): the same function (to float rounding), but Debian's libtorch
/// runs tanh-GELU about 3x slower than these in-place passes (README's benchmark section). Float32
/// and float64 take this path, with a hand-written backward; other dtypes use torch::gelu.
torch::Tensor gelu_tanh(const torch::Tensor& x);

/// Sizes of the built-in model. The defaults cost a few milliseconds per 32x32 RGB sample on
/// a 2-core CPU (README's benchmark table).
struct DitConfig {
  std::int64_t image_size = 32;
  std::int64_t channels = 3;
  std::int64_t patch = 4;
  std::int64_t width = 128;
  std::int64_t depth = 4;
  std::int64_t heads = 4;
  std::int64_t mlp_ratio = 4;
  std::int64_t max_text_tokens = 16;
  /// Image-token positions: "sincos" (fixed 2D sin-cos, as DiT and SD3) or "learned" (the
  /// pre-1.1 model: a parameter initialised at 0.02, too weak for tokens to agree on where an
  /// object is). Checkpoints without the field are "learned".
  std::string pos_embed = "sincos";
  /// Text-token positions: "sincos" (fixed 1D sin-cos, norm sqrt(W/2), the scale of the word
  /// embeddings) or "learned" (the model before 1.3: a parameter initialised at 0.02 that stayed
  /// small beside embeddings of norm sqrt(W), so the joint attention saw nearly a bag of words
  /// and "a red circle and a blue square" drew the same image as its colour swap; README's
  /// word-order probe). Checkpoints without the field are "learned".
  std::string text_pos_embed = "sincos";
  /// Transformer layers over the text tokens alone before the joint blocks (a small text encoder,
  /// trained with the model, where SD3 has a frozen T5): they can mix each word with its
  /// neighbours ("red" next to "circle") from the first step, where the joint blocks' text
  /// stream starts gated off (adaLN-zero). Whether that helps binding is not yet measured at a
  /// full recipe (README). Checkpoints without the field have 0.
  std::int64_t text_layers = 0;
  /// Whether the prompt also reaches every block's modulation as the masked mean of its tokens
  /// ("mean", as SD3's pooled text; the model before 1.3) or only through the joint attention
  /// ("none"). Without text layers the mean is a bag of words, and README's text-path table
  /// measured it carrying most of the prompt's effect where shapes are drawn: a path that cannot
  /// say which colour goes with which shape. Checkpoints without the field are "mean".
  std::string text_pool = "mean";
  /// Channels of the unpatchified feature map that a 3x3 convolution smooths into the image
  /// (as U-ViT's output conv); 0 = unpatchify straight to the image (the pre-1.1 model, whose
  /// samples show the patch grid). Checkpoints without the field have 0.
  std::int64_t out_conv = 16;
  /// What the network's output is: "velocity" (v = noise - x0, the pre-1.2 model) or "x0" (the
  /// clean image, turned into the velocity (x - x0_hat) / max(sigma, 0.05) as JiT does: a
  /// pixel-space model then need not reproduce the noise). Checkpoints without the field are
  /// "velocity"; either way the policy's output is a velocity.
  std::string prediction = "velocity";

  std::int64_t image_tokens() const { return (image_size / patch) * (image_size / patch); }
  /// \throws UsageError on inconsistent sizes
  void validate() const;
  std::string to_json() const;
  /// \throws DataError naming `where` for a missing or bad field
  static DitConfig from_json(const std::string& text, const std::string& where);
  /// Multiply-adds x 2 of one forward pass for one sample (all text tokens present).
  double flops_per_sample() const;
};

/// The joint image-text transformer block (adaLN-zero modulated, MMDiT-style).
struct JointBlockImpl : torch::nn::Module {
  JointBlockImpl(std::int64_t width, std::int64_t heads, std::int64_t mlp_ratio);
  /// img [B, N, W], txt [B, L, W], c [B, W], key_mask [B, N + L] bool -> updated (img, txt)
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& img, const torch::Tensor& txt,
                                                  const torch::Tensor& c, const torch::Tensor& key_mask);
  std::int64_t heads;
  torch::nn::Linear img_mod{nullptr}, txt_mod{nullptr}, img_qkv{nullptr}, txt_qkv{nullptr};
  torch::nn::Linear img_proj{nullptr}, txt_proj{nullptr};
  torch::nn::Linear img_fc1{nullptr}, img_fc2{nullptr}, txt_fc1{nullptr}, txt_fc2{nullptr};
};
TORCH_MODULE(JointBlock);

/// A pre-LayerNorm transformer encoder layer over the text tokens (self-attention with the
/// padding masked, then an MLP), ungated: it mixes the words from initialisation on.
struct TextLayerImpl : torch::nn::Module {
  TextLayerImpl(std::int64_t width, std::int64_t heads, std::int64_t mlp_ratio);
  /// txt [B, L, W], mask [B, L] bool -> txt
  torch::Tensor forward(const torch::Tensor& txt, const torch::Tensor& mask);
  std::int64_t heads;
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(TextLayer);

struct DitImpl : torch::nn::Module {
  DitImpl(const DitConfig& config, std::int64_t vocab_size);
  /// x [B, C, H, W], sigma [B], tokens [B, L] int64, mask [B, L] bool -> velocity [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& sigma, const torch::Tensor& tokens,
                        const torch::Tensor& mask);
  DitConfig config;
  torch::nn::Linear patch_embed{nullptr}, time_fc1{nullptr}, time_fc2{nullptr}, text_pool{nullptr};
  torch::nn::Embedding token_embed{nullptr};
  torch::Tensor image_pos, text_pos;
  torch::nn::ModuleList text_encoder, blocks;
  torch::nn::Linear final_mod{nullptr}, final_out{nullptr};
  torch::nn::Conv2d smooth{nullptr};  // only when config.out_conv > 0
};
TORCH_MODULE(Dit);

class BuiltinPolicy : public Policy {
 public:
  /// A freshly initialised model (seeded: same seed, same weights).
  BuiltinPolicy(const DitConfig& config, Tokenizer tokenizer, std::uint64_t seed);
  /// Loads a checkpoint written by save(). \throws DataError naming the file and tensor
  static std::unique_ptr<BuiltinPolicy> load(const std::string& path, const Placement& placement);

  std::string kind() const override { return "builtin-dit"; }
  torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c) override;
  Conditioning encode(const std::vector<std::string>& prompts) const override;
  bool reads_text() const override { return true; }
  Conditioning null_conditioning(std::int64_t batch, const Conditioning& like) const override;
  std::vector<std::int64_t> latent_shape() const override;
  void place(const Placement& placement) override;
  Placement placement() const override { return placement_; }
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const override;
  void save(const std::string& path, bool force, const std::map<std::string, torch::Tensor>& extra = {},
            const std::map<std::string, std::string>& metadata = {}) const override;

  const DitConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  std::int64_t parameter_count() const;
  /// Tensors stored beside the weights in the checkpoint it was loaded from (e.g. optimizer state).
  const std::map<std::string, torch::Tensor>& extras() const override { return extras_; }
  /// The checkpoint's string metadata (config, vocabulary, provenance, training state...).
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::optional<Architecture> architecture() const override;

 private:
  DitConfig config_;
  Tokenizer tokenizer_;
  Dit net_{nullptr};
  Placement placement_;
  std::map<std::string, torch::Tensor> extras_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace treerpo::model
