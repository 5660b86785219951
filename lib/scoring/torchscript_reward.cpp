// torchscript_reward.cpp -- loading and calling TorchScript reward and decoder modules.
#include "scoring/torchscript_reward.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "core/error.hpp"
#include "core/text.hpp"

namespace treerpo::scoring {
namespace {
torch::jit::Module load_module(const std::string& path, const torch::Device& device, const std::string& role) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw NoInputError(with_errno(path, errno));
  try {
    auto m = torch::jit::load(path, device);
    m.eval();
    if (!m.find_method("forward")) throw DataError(path + ": the " + role + " module has no forward method");
    return m;
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw DataError(path + ": not a TorchScript " + role + " module (" + what.substr(0, what.find('\n')) + ")");
  }
}

std::string shape_text(const torch::Tensor& t) { return treerpo::shape_text(t.sizes().vec()); }
}  // namespace

TorchScriptReward::TorchScriptReward(const std::string& path, const torch::Device& device)
    : path_(path), module_(load_module(path, device, "reward")), device_(device) {
  arity_ = module_.get_method("forward").function().getSchema().arguments().size() - 1;  // minus self
  if (arity_ < 1 || arity_ > 3)
    throw DataError(path + ": forward must take (images[, encoder_hidden_states[, pooled]]), it takes " +
                    std::to_string(arity_) + " arguments");
}

std::vector<double> TorchScriptReward::score(const torch::Tensor& images, const model::Conditioning& cond) {
  torch::NoGradGuard no_grad;
  const auto B = images.size(0);
  std::vector<torch::jit::IValue> args{images.permute({0, 3, 1, 2}).to(device_, torch::kFloat).div(255.0)};
  if (arity_ >= 2) {
    if (!cond.hidden.defined())
      throw DataError(path_ + ": the reward module takes prompt embeddings but the file's /prompts has none");
    args.emplace_back(cond.hidden.to(device_, torch::kFloat));
  }
  if (arity_ >= 3) {
    if (!cond.pooled.defined())
      throw DataError(path_ + ": the reward module takes pooled embeddings but the file's /prompts/pooled is absent");
    args.emplace_back(cond.pooled.to(device_, torch::kFloat));
  }
  torch::Tensor out;
  try {
    out = module_.forward(args).toTensor();
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw DataError(path_ + ": forward failed: " + what.substr(0, what.find('\n')));
  }
  if (out.numel() != B || (out.dim() != 1 && !(out.dim() == 2 && out.size(1) == 1)))
    throw DataError(path_ + ": forward returned " + shape_text(out) + ", expected [" + std::to_string(B) + "] scores");
  const auto flat = out.reshape({B}).to(torch::kCPU, torch::kDouble).contiguous();
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + B);
}

TorchScriptDecoder::TorchScriptDecoder(const std::string& path, const torch::Device& device)
    : path_(path), module_(load_module(path, device, "decoder")), device_(device) {}

torch::Tensor TorchScriptDecoder::decode(const torch::Tensor& latents) {
  torch::NoGradGuard no_grad;
  torch::Tensor out;
  try {
    out = module_.forward({latents.to(device_, torch::kFloat)}).toTensor();
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw DataError(path_ + ": forward failed: " + what.substr(0, what.find('\n')));
  }
  if (out.dim() != 4 || out.size(0) != latents.size(0) || out.size(1) != 3)
    throw DataError(path_ + ": the decoder returned " + shape_text(out) + ", expected [" +
                    std::to_string(latents.size(0)) + ", 3, H, W]");
  return model::to_pixels(out);
}

}  // namespace treerpo::scoring
