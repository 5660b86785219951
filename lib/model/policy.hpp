// policy.hpp -- one interface for every velocity model the tools sample from and train:
// the built-in diffusion transformer and TorchScript exports of real models.
#pragma once
#include <torch/types.h>

#include "format/trajectory.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace treerpo::model {

/// What a prompt contributes to a model: token ids (built-in model) or precomputed embeddings
/// (TorchScript models, from an HDF5 prompt file).
struct Conditioning {
  torch::Tensor tokens;  ///< [B, L] int64, or undefined
  torch::Tensor hidden;  ///< [B, L, D] float, or undefined
  torch::Tensor mask;    ///< [B, L] bool: true for real tokens (undefined = all real)
  torch::Tensor pooled;  ///< [B, D] float, or undefined
  std::int64_t batch() const;
  /// Rows [begin, end) of every defined tensor.
  Conditioning slice(std::int64_t begin, std::int64_t end) const;
  /// The given rows (int64 indices, repeats allowed) of every defined tensor.
  Conditioning index_select(const torch::Tensor& rows) const;
  /// Concatenates along the batch axis (same kinds of tensors in each).
  static Conditioning cat(const std::vector<Conditioning>& parts);
  Conditioning to(const torch::Device& device) const;
};

/// Where a policy runs and in what precision.
struct Placement {
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
};

/// How exported parameter names are rewritten for the module they will be loaded into:
/// `strip_prefix` (e.g. "net.transformer.", a wrapper's path) is removed from every name, and
/// `peft` drops the adapter name after lora_A / lora_B ("...to_q.lora_A.default.weight" ->
/// "...to_q.lora_A.weight"), as peft's get_peft_model_state_dict and diffusers' LoRA files do.
struct ExportNames {
  std::string strip_prefix;
  bool peft = false;
};

/// `name` rewritten by `names`. \throws UsageError when it lacks the prefix to strip
std::string exported_name(const std::string& name, const ExportNames& names);

class Policy {
 public:
  virtual ~Policy() = default;

  /// "builtin-dit" or "torchscript".
  virtual std::string kind() const = 0;
  /// The velocity v(x, sigma, c) ~ e - x0 on a batch: x [B, C, H, W], sigma [B] in [0, 1]
  /// (float). Returns [B, C, H, W] in the policy's dtype, differentiable in its parameters.
  virtual torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& sigma, const Conditioning& c) = 0;
  /// Conditioning for prompt texts. \throws UsageError when the policy needs precomputed embeddings
  virtual Conditioning encode(const std::vector<std::string>& prompts) const = 0;
  /// True when encode() works (the policy has its own tokenizer).
  virtual bool reads_text() const = 0;
  /// The null conditioning of classifier-free guidance, for `batch` samples like `like`.
  virtual Conditioning null_conditioning(std::int64_t batch, const Conditioning& like) const = 0;
  /// Shape [C, H, W] of one latent.
  virtual std::vector<std::int64_t> latent_shape() const = 0;

  virtual void place(const Placement& placement) = 0;
  virtual Placement placement() const = 0;

  /// Every parameter by its module name (e.g. "blocks.0.img_qkv.weight").
  virtual std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const = 0;
  /// Makes exactly the parameters whose names match `regex` (ECMAScript, searched) trainable.
  /// Returns how many matched. \throws UsageError when none matches
  std::size_t set_trainable(const std::string& regex);
  std::vector<torch::Tensor> trainable_parameters() const;
  std::vector<std::string> trainable_names() const;

  /// Saves the whole policy in its own format (safetensors checkpoint / TorchScript archive).
  /// `extra` tensors (e.g. optimizer state) are stored beside the weights where the format allows.
  /// `metadata` strings (e.g. a provenance record) go into the file where the format allows.
  virtual void save(const std::string& path, bool force, const std::map<std::string, torch::Tensor>& extra = {},
                    const std::map<std::string, std::string>& metadata = {}) const = 0;

  /// Exports parameters as safetensors with their module names (trainable ones only when
  /// `trainable_only`), renamed by `names`, e.g. to publish tuned weights.
  /// \throws UsageError when a name lacks the prefix to strip or two names collide
  void export_safetensors(const std::string& path, bool trainable_only, bool force,
                          const ExportNames& names) const;
  void export_safetensors(const std::string& path, bool trainable_only, bool force) const;

  /// The timestep the model takes ("sigma" or "1000sigma") and what it returns ("velocity" or
  /// "negative_velocity", which the policy negates), as resolved at load.
  virtual std::string timestep_convention() const { return "sigma"; }
  virtual std::string output_sign() const { return "velocity"; }
  /// Refuses conditioning this policy cannot take, naming `source` (the prompt file) and the
  /// dataset. \throws DataError
  virtual void check_conditioning(const Conditioning& /*c*/, const std::string& /*source*/) const {}

  /// The string metadata and extra tensors (e.g. optimizer state) of the checkpoint the policy
  /// was loaded from; empty where the format keeps none.
  virtual const std::map<std::string, std::string>& metadata() const;
  virtual const std::map<std::string, torch::Tensor>& extras() const;

  /// What `treerpo-model info` shows of a policy whose architecture is known: its configuration
  /// as JSON, its vocabulary size and its forward FLOPs per sample.
  struct Architecture {
    std::string config_json;
    std::int64_t vocabulary_size = 0;
    double flops_per_sample = 0;
  };
  /// The architecture, or none for an arbitrary module.
  virtual std::optional<Architecture> architecture() const { return std::nullopt; }

  /// "sha256:..." of every parameter's name, dtype, shape and bytes, in name order: which
  /// weights made a file.
  std::string digest() const;
};

/// Conditioning of prompts [begin, end) of a prompt set: token ids for a policy that reads text,
/// the precomputed embeddings (with mask and pooled vectors when present) otherwise.
/// \throws DataError naming `source` when the embeddings a policy needs are missing
Conditioning conditioning_for(const Policy& policy, const format::Prompts& prompts, std::size_t begin, std::size_t end,
                              const std::string& source);

/// The velocity of a batch of any size with classifier-free guidance scale `guidance`
/// (v_u + w (v_c - v_u), the null conditioning's v_u in the same forward pass; w = 1 takes the
/// conditional velocity alone), evaluated in chunks of at most `max_rows` model rows (a guided
/// sample takes two). x [B, ...] with `cond` of B rows, at one noise level `sigma`. Returns
/// float32 [B, ...] on x's device, differentiable when grad mode is on.
/// \throws std::invalid_argument when max_rows < 1
torch::Tensor guided_velocity(Policy& policy, const torch::Tensor& x, double sigma, const Conditioning& cond,
                              double guidance, std::int64_t max_rows);
/// The same with a noise level per sample, `sigma` [B].
torch::Tensor guided_velocity(Policy& policy, const torch::Tensor& x, const torch::Tensor& sigma,
                              const Conditioning& cond, double guidance, std::int64_t max_rows);

/// How to load a policy.
struct PolicyOptions {
  Placement placement;
  /// TorchScript only: the timestep the module expects ("sigma" or "1000sigma") and whether it
  /// returns the velocity or its negation. Empty = the module's own treerpo_* attributes, else
  /// "sigma" / false.
  std::string timestep_convention;
  std::optional<bool> negate_output;
  /// TorchScript only: latent shape C,H,W when the module has no treerpo_latent_shape attribute.
  std::vector<std::int64_t> latent_shape;
};

/// Loads a built-in checkpoint (safetensors) or a TorchScript archive (zip), told apart by
/// their first bytes. \throws NoInputError, DataError, UsageError
std::unique_ptr<Policy> load_policy(const std::string& path, const PolicyOptions& options = {});

/// Pixel-space latents in [-1, 1] ([N, 3, H, W]) as 8-bit RGB images [N, H, W, 3] (rounded,
/// clamped; contiguous, CPU): the decoder of the built-in model. \throws std::invalid_argument
torch::Tensor to_pixels(const torch::Tensor& latents);

/// Converts between torch tensors and safetensors entries (contiguous CPU copies).
struct SafeTensorCodec {
  static std::string dtype_name(torch::ScalarType t);       ///< \throws UsageError for unsupported types
  static torch::ScalarType scalar_type(const std::string& dtype);  ///< \throws DataError
};

/// Writes named tensors (and string metadata) as one safetensors file, atomically.
void write_tensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                   const std::map<std::string, std::string>& metadata, bool force);
/// Reads every tensor of a safetensors file. \throws NoInputError, DataError
std::map<std::string, torch::Tensor> read_tensors(const std::string& path);

}  // namespace treerpo::model
