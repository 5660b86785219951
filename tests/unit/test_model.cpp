// test_model.cpp -- the built-in transformer, checkpoints, digests, trainable subsets and
// TorchScript policies (a module built and scripted from C++ here).
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "core/error.hpp"
#include "flow/step.hpp"
#include "model/builtin_dit.hpp"
#include "model/torchscript_policy.hpp"
#include "runtime/runtime.hpp"
#include "test_util.hpp"

using namespace treerpo;
using namespace treerpo::model;

namespace {
DitConfig tiny() {
  DitConfig c;
  c.image_size = 8;
  c.patch = 2;
  c.width = 32;
  c.depth = 2;
  c.heads = 2;
  c.max_text_tokens = 6;
  return c;
}

// One optimiser step on a regression target, so the zero-initialised output layers move.
void train_step(Policy& p, const Conditioning& c, double lr = 1e-2) {
  auto params = p.trainable_parameters();
  torch::optim::SGD opt(params, lr);
  const auto x = torch::randn({c.batch(), 3, 8, 8});
  const auto loss = (p.velocity(x, torch::full({c.batch()}, 0.5), c) - torch::ones_like(x)).pow(2).mean();
  loss.backward();
  opt.step();
  opt.zero_grad();
}
}  // namespace

TEST(Model, AdaLnZeroStartsAtZeroVelocityAndLearns) {
  BuiltinPolicy p(tiny(), Tokenizer(Tokenizer::default_words()), 1);
  const auto c = p.encode({"a red circle", "two blue squares"});
  const auto x = torch::randn({2, 3, 8, 8});
  // adaLN-zero: the output layer starts at zero, so the velocity is the output convolution's
  // bias alone (zero without the convolution), whatever the input and the prompt.
  const auto v0 = p.velocity(x, torch::full({2}, 0.7), c);
  EXPECT_EQ((v0 - p.velocity(torch::randn({2, 3, 8, 8}), torch::full({2}, 0.2), p.encode({"a green cross", "a circle"})))
                .abs().max().item<float>(), 0.0f);
  auto flat = tiny();
  flat.out_conv = 0;
  BuiltinPolicy plain(flat, Tokenizer(Tokenizer::default_words()), 1);
  EXPECT_EQ(plain.velocity(x, torch::full({2}, 0.7), c).abs().max().item<float>(), 0.0f);
  p.set_trainable(".*");
  for (int i = 0; i < 10; ++i) train_step(p, c);
  const auto v = p.velocity(x, torch::full({2}, 0.7), c);
  EXPECT_EQ(v.sizes(), x.sizes());
  EXPECT_GT(v.abs().max().item<float>(), 0.0f);
  // Conditioning matters: another prompt, and the null prompt, change the velocity.
  const auto other = p.velocity(x, torch::full({2}, 0.7), p.encode({"a green cross", "four rings"}));
  EXPECT_GT((v - other).abs().max().item<float>(), 1e-6f);
  const auto null = p.velocity(x, torch::full({2}, 0.7), p.null_conditioning(2, c));
  EXPECT_GT((v - null).abs().max().item<float>(), 1e-6f);
}

TEST(Model, X0PredictionIsTheVelocityTowardsTheNetworksImage) {
  // Same seed, same weights: the x0 model's network output is the velocity model's output y,
  // and its velocity must be (x - y) / max(sigma, 0.05), so that x - sigma v = y above the floor.
  auto x0_config = tiny();
  x0_config.prediction = "x0";
  BuiltinPolicy vel(tiny(), Tokenizer(Tokenizer::default_words()), 4), x0(x0_config, Tokenizer(Tokenizer::default_words()), 4);
  vel.set_trainable(".*");
  x0.set_trainable(".*");
  const auto c = vel.encode({"a red circle", "two blue squares", "a cross", "a ring"});
  train_step(vel, c);  // same step on both: the output layers move off zero
  const auto x = torch::randn({4, 3, 8, 8});
  {
    torch::NoGradGuard guard;
    const auto v = vel.named_parameters();
    for (std::size_t k = 0; k < v.size(); ++k) x0.named_parameters()[k].second.copy_(v[k].second);
  }
  const auto sigma = torch::tensor({0.9f, 0.3f, 0.05f, 0.01f});
  const auto y = vel.velocity(x, sigma, c).detach().to(torch::kDouble);
  const auto v = x0.velocity(x, sigma, c).detach().to(torch::kDouble);
  const auto expected = (x.to(torch::kDouble) - y) / torch::tensor({0.9, 0.3, 0.05, 0.05}, torch::kDouble).view({4, 1, 1, 1});
  EXPECT_TRUE(torch::allclose(v, expected, 1e-5, 1e-5)) << (v - expected).abs().max().item<double>();
  EXPECT_GT(y.abs().max().item<double>(), 0.0);
  // The field is stored: a checkpoint without it is a velocity model.
  EXPECT_NE(x0_config.to_json().find("\"prediction\":\"x0\""), std::string::npos);
  EXPECT_EQ(DitConfig::from_json(R"({"image_size": 8})", "m").prediction, "velocity");
  EXPECT_THROW(DitConfig::from_json(R"({"prediction": "eps"})", "m.safetensors"), DataError);
}

TEST(Model, PaddingIsMaskedAndSamplesAreIndependentOfTheBatch) {
  BuiltinPolicy p(tiny(), Tokenizer(Tokenizer::default_words()), 2);
  p.set_trainable(".*");
  train_step(p, p.encode({"a red circle", "a blue square"}));
  auto c = p.encode({"a red circle", "a blue square left of a green ring"});
  const auto x = torch::randn({2, 3, 8, 8}), s = torch::tensor({0.9f, 0.3f});
  const auto v = p.velocity(x, s, c).detach();
  auto garbage = c;
  garbage.tokens = c.tokens.clone();
  garbage.tokens.index_put_({0, torch::indexing::Slice(3, torch::indexing::None)}, 5);  // behind the mask
  EXPECT_TRUE(torch::allclose(p.velocity(x, s, garbage).detach(), v, 0, 1e-6));
  const auto alone = p.velocity(x.narrow(0, 1, 1), s.narrow(0, 1, 1), c.slice(1, 2)).detach();
  EXPECT_TRUE(torch::allclose(alone, v.narrow(0, 1, 1), 1e-5, 1e-6));
}

// 1.3: fixed text positions, so that word order (which colour goes with which shape) reaches
// the attention at the scale of the word embeddings; the learned table stays for old checkpoints.
TEST(Model, TextPositionsAreFixedSinCosAtTheWordEmbeddingsScale) {
  const auto c = tiny();  // width 32, 6 text tokens
  ASSERT_EQ(c.text_pos_embed, "sincos");
  Dit net(c, 10);
  ASSERT_EQ(net->text_pos.sizes(), torch::IntArrayRef({1, 6, 32}));
  for (std::int64_t pos = 0; pos < 6; ++pos)
    for (std::int64_t i = 0; i < 16; ++i) {
      const double angle = static_cast<double>(pos) * std::pow(10000.0, -static_cast<double>(i) / 16.0);
      EXPECT_NEAR(net->text_pos[0][pos][i].item<double>(), std::sin(angle), 1e-6);
      EXPECT_NEAR(net->text_pos[0][pos][16 + i].item<double>(), std::cos(angle), 1e-6);
    }
  EXPECT_NEAR(net->text_pos[0][5].norm().item<double>(), std::sqrt(16.0), 1e-5);
  // Fixed: a buffer, neither trained nor stored; the learned table is a parameter.
  for (const auto& item : net->named_parameters()) EXPECT_NE(item.key(), "text_pos");
  auto learned = c;
  learned.text_pos_embed = "learned";
  EXPECT_TRUE(Dit(learned, 10)->named_parameters().contains("text_pos"));
  // The field is stored; a checkpoint without it is the learned table of the models before it.
  EXPECT_NE(c.to_json().find("\"text_pos_embed\":\"sincos\""), std::string::npos);
  EXPECT_EQ(DitConfig::from_json(R"({"image_size": 8})", "m").text_pos_embed, "learned");
  EXPECT_THROW(DitConfig::from_json(R"({"text_pos_embed": "rope"})", "m.safetensors"), DataError);
}

// 1.3: a text encoder before the joint blocks: padding stays masked, word order reaches the
// velocity, and old checkpoints have none.
TEST(Model, TextLayersMaskThePaddingAndMixTheWords) {
  auto c = tiny();
  c.text_layers = 2;
  BuiltinPolicy p(c, Tokenizer(Tokenizer::default_words()), 2);
  EXPECT_GT(p.parameter_count(), BuiltinPolicy(tiny(), Tokenizer(Tokenizer::default_words()), 2).parameter_count());
  EXPECT_GT(c.flops_per_sample(), tiny().flops_per_sample());
  p.set_trainable(".*");
  for (int i = 0; i < 5; ++i) train_step(p, p.encode({"a red circle", "a blue square"}));  // off adaLN-zero
  const auto x = torch::randn({1, 3, 8, 8}), s = torch::tensor({0.6f});
  const auto cond = p.encode({"a red circle"});
  auto garbage = cond;
  garbage.tokens = cond.tokens.clone();
  garbage.tokens.index_put_({0, torch::indexing::Slice(3, torch::indexing::None)}, 5);  // behind the mask
  EXPECT_TRUE(torch::allclose(p.velocity(x, s, garbage).detach(), p.velocity(x, s, cond).detach(), 0, 1e-6));
  // The same words in another order (6 tokens: "a red circle and a blue") give another velocity.
  const auto v = p.velocity(x, s, p.encode({"a red circle and a blue square"})).detach();
  const auto swapped = p.velocity(x, s, p.encode({"a blue circle and a red square"})).detach();
  EXPECT_GT((swapped - v).abs().max().item<float>(), 0.0f);  // a repeat is bit for bit equal
  EXPECT_EQ(DitConfig::from_json(R"({"image_size": 8})", "m").text_layers, 0);
  EXPECT_NE(c.to_json().find("\"text_layers\":2"), std::string::npos);
  EXPECT_THROW(DitConfig::from_json(R"({"text_layers": -1})", "m.safetensors"), DataError);
}

TEST(Model, WithoutTextPoolingThePromptReachesTheImageOnlyThroughAttention) {
  auto c = tiny();
  c.text_pool = "none";
  BuiltinPolicy p(c, Tokenizer(Tokenizer::default_words()), 2);
  const auto names = p.named_parameters();
  EXPECT_EQ(std::count_if(names.begin(), names.end(), [](const auto& n) { return n.first.rfind("text_pool", 0) == 0; }), 0);
  EXPECT_EQ(BuiltinPolicy(tiny(), Tokenizer(Tokenizer::default_words()), 2).parameter_count() - p.parameter_count(),
            c.width * c.width + c.width);
  EXPECT_LT(c.flops_per_sample(), tiny().flops_per_sample());
  p.set_trainable(".*");
  for (int i = 0; i < 5; ++i) train_step(p, p.encode({"a red circle", "a blue square"}));  // off adaLN-zero
  // The text tokens' keys and values zeroed in every block (same token count): no path is left
  // from the words to the image. With the pooled mean the two prompts would still differ.
  const auto x = torch::randn({1, 3, 8, 8}), s = torch::tensor({0.6f});
  const auto red = p.encode({"a red circle"}), blue = p.encode({"a blue square"});
  EXPECT_GT((p.velocity(x, s, red) - p.velocity(x, s, blue)).abs().max().item<float>(), 0.0f);
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : p.named_parameters())
      if (name.find("txt_qkv") != std::string::npos) t.narrow(0, c.width, 2 * c.width).zero_();  // rows q | k | v
  }
  EXPECT_TRUE(torch::equal(p.velocity(x, s, red), p.velocity(x, s, blue)));
  EXPECT_EQ(DitConfig::from_json(R"({"image_size": 8})", "m").text_pool, "mean");
  EXPECT_NE(c.to_json().find("\"text_pool\":\"none\""), std::string::npos);
  EXPECT_THROW(DitConfig::from_json(R"({"text_pool": "max"})", "m.safetensors"), DataError);
}

TEST(Model, TokenizerMapsWordsAndUnknowns) {
  Tokenizer t(Tokenizer::default_words());
  std::size_t unknown = 0;
  const auto ids = t.encode("A Red circle, LEFT of a zebra!", 16, &unknown);
  ASSERT_EQ(ids.size(), 7u);
  EXPECT_EQ(t.vocabulary()[static_cast<std::size_t>(ids[1])], "red");
  EXPECT_EQ(ids[6], Tokenizer::kUnknown);
  EXPECT_EQ(unknown, 1u);
  EXPECT_EQ(t.encode("a a a a", 2).size(), 2u);
  EXPECT_THROW(Tokenizer({"red", "red"}), std::invalid_argument);
}

TEST(Model, CheckpointRoundTripKeepsWeightsConfigVocabularyAndExtras) {
  const auto dir = test::temp_dir();
  BuiltinPolicy p(tiny(), Tokenizer({"red", "circle", "zebra"}), 3);
  p.set_trainable(".*");
  train_step(p, p.encode({"red circle"}));
  const auto extra = torch::arange(6, torch::kFloat).view({2, 3});
  p.save(dir + "/m.safetensors", false, {{"optimizer.step", extra}});
  auto loaded = load_policy(dir + "/m.safetensors");
  ASSERT_EQ(loaded->kind(), "builtin-dit");
  EXPECT_EQ(loaded->digest(), p.digest());
  auto& b = dynamic_cast<BuiltinPolicy&>(*loaded);
  EXPECT_EQ(b.tokenizer().vocabulary(), p.tokenizer().vocabulary());
  EXPECT_EQ(b.config().to_json(), p.config().to_json());
  EXPECT_TRUE(torch::equal(b.extras().at("optimizer.step"), extra));
  const auto x = torch::randn({1, 3, 8, 8});
  const auto c = p.encode({"red zebra"});
  EXPECT_TRUE(torch::equal(loaded->velocity(x, torch::full({1}, 0.4), c), p.velocity(x, torch::full({1}, 0.4), c)));
  // Same seed, same weights; another seed, another digest.
  EXPECT_EQ(BuiltinPolicy(tiny(), Tokenizer({"a"}), 9).digest(), BuiltinPolicy(tiny(), Tokenizer({"a"}), 9).digest());
  EXPECT_NE(BuiltinPolicy(tiny(), Tokenizer({"a"}), 9).digest(), BuiltinPolicy(tiny(), Tokenizer({"a"}), 10).digest());
  EXPECT_THROW(p.save(dir + "/m.safetensors", false), UsageError);  // exists
  // A damaged checkpoint is refused with the file and tensor named.
  std::ofstream(dir + "/bad.safetensors", std::ios::binary) << "not a checkpoint at all";
  EXPECT_THROW(load_policy(dir + "/bad.safetensors"), DataError);
  EXPECT_THROW(load_policy(dir + "/missing.safetensors"), NoInputError);
}

// Issue 18: exported names for the module the adapters go back into.
TEST(Model, ExportedNamesStripThePrefixAndDropThePeftAdapterName) {
  const std::string name = "net.transformer.transformer_blocks.0.attn.to_q.lora_A.default.weight";
  EXPECT_EQ(model::exported_name(name, {}), name);
  EXPECT_EQ(model::exported_name(name, {"net.transformer.", false}), "transformer_blocks.0.attn.to_q.lora_A.default.weight");
  EXPECT_EQ(model::exported_name(name, {"net.transformer.", true}), "transformer_blocks.0.attn.to_q.lora_A.weight");
  EXPECT_EQ(model::exported_name("a.to_out.0.lora_B.style.weight", {"", true}), "a.to_out.0.lora_B.weight");
  EXPECT_EQ(model::exported_name("a.to_q.base_layer.weight", {"", true}), "a.to_q.base_layer.weight");
  EXPECT_THROW(model::exported_name(name, {"other.", false}), UsageError);
}

TEST(Model, DefaultSizeAndFlops) {
  BuiltinPolicy p(DitConfig{}, Tokenizer(Tokenizer::default_words()), 0);
  EXPECT_GT(p.parameter_count(), 500000);
  EXPECT_LT(p.parameter_count(), 5000000);
  // FLOPs: dominated by the blocks; 80 tokens x width 128 x depth 4.
  EXPECT_GT(DitConfig{}.flops_per_sample(), 5e7);
  EXPECT_LT(DitConfig{}.flops_per_sample(), 5e8);
}

namespace {
// A TorchScript "transformer" with the documented signature, built and scripted in C++:
// forward(latents, timestep, encoder_hidden_states) -> velocity, with a LoRA-style adapter.
std::string make_torchscript(const std::string& path, bool with_attributes) {
  torch::manual_seed(4);
  torch::jit::Module m("ToyTransformer");
  m.register_parameter("proj", torch::randn({5, 3}) * 0.1, false);
  m.register_parameter("base", torch::randn({3, 3}) * 0.1, false);
  m.register_parameter("lora_down", torch::randn({2, 3}) * 0.1, false);
  m.register_parameter("lora_up", torch::randn({3, 2}) * 0.1, false);
  if (with_attributes) {
    m.register_attribute("treerpo_timestep", c10::StringType::get(), std::string("1000sigma"));
    m.register_attribute("treerpo_output", c10::StringType::get(), std::string("negative_velocity"));
    m.register_attribute("treerpo_latent_shape", c10::ListType::ofInts(), c10::List<int64_t>({3, 4, 4}));
  }
  m.define(R"(
    def forward(self, latents, timestep, encoder_hidden_states):
        text = torch.matmul(encoder_hidden_states.mean(1), self.proj)          # [B, 3]
        w = self.base + torch.matmul(self.lora_up, self.lora_down)            # [3, 3]
        mixed = torch.einsum('bchw,dc->bdhw', latents, w)
        return mixed + text[:, :, None, None] * (timestep / 1000.0)[:, None, None, None]
  )");
  m.save(path);
  return path;
}
}  // namespace

TEST(TorchScript, LoadRunTrainSelectedParametersExportAndReload) {
  const auto dir = test::temp_dir();
  const auto path = make_torchscript(dir + "/toy.pt", /*with_attributes=*/true);
  auto policy = load_policy(path);
  auto& ts = dynamic_cast<TorchScriptPolicy&>(*policy);
  EXPECT_TRUE(ts.timestep_is_1000_sigma());
  EXPECT_TRUE(ts.negates_output());
  EXPECT_EQ(policy->latent_shape(), (std::vector<std::int64_t>{3, 4, 4}));
  Conditioning c;
  c.hidden = torch::randn({2, 7, 5});
  const auto x = torch::randn({2, 3, 4, 4}), sigma = torch::tensor({0.25f, 0.5f});
  // The declared conventions: timestep 1000 sigma in, negated output out.
  auto params = policy->named_parameters();
  std::map<std::string, torch::Tensor> before;
  for (const auto& [n, t] : params) before[n] = t.detach().clone();
  const auto w = before["base"] + torch::matmul(before["lora_up"], before["lora_down"]);
  const auto want = -(torch::einsum("bchw,dc->bdhw", {x, w}) +
                      torch::matmul(c.hidden.mean(1), before["proj"]).view({2, 3, 1, 1}) * sigma.view({2, 1, 1, 1}));
  EXPECT_TRUE(torch::allclose(policy->velocity(x, sigma, c), want, 1e-5, 1e-6));
  EXPECT_THROW(policy->encode({"a prompt"}), UsageError);

  EXPECT_EQ(policy->set_trainable("^lora_"), 2u);
  EXPECT_THROW(policy->set_trainable("^nothing"), UsageError);
  policy->set_trainable("^lora_");
  torch::optim::SGD opt(policy->trainable_parameters(), 0.5);
  policy->velocity(x, sigma, c).pow(2).mean().backward();
  opt.step();
  for (const auto& [n, t] : policy->named_parameters()) {
    const bool changed = !torch::equal(t.detach(), before[n]);
    EXPECT_EQ(changed, n.rfind("lora_", 0) == 0) << n;
  }
  // Export the trained adapter with its module names, and check it with an independent reader.
  policy->export_safetensors(dir + "/lora.safetensors", /*trainable_only=*/true, false);
  const auto tensors = read_tensors(dir + "/lora.safetensors");
  ASSERT_EQ(tensors.size(), 2u);
  for (const auto& [n, t] : policy->named_parameters())
    if (tensors.count(n)) {
      EXPECT_TRUE(torch::equal(tensors.at(n), t.detach()));
    }
  const std::string check = std::string("/usr/bin/python3 ") + TREERPO_SOURCE_DIR + "/tests/unit/read_safetensors.py " +
                            dir + "/lora.safetensors lora_down:2,3 lora_up:3,2";
  EXPECT_EQ(std::system(check.c_str()), 0) << check;
  // Save the whole module back; it reloads with the trained weights.
  policy->save(dir + "/trained.pt", false);
  auto again = load_policy(dir + "/trained.pt");
  EXPECT_EQ(again->digest(), policy->digest());
  EXPECT_NE(again->digest(), load_policy(path)->digest());
}

TEST(TorchScript, ConventionsFromOptionsAndRefusals) {
  const auto dir = test::temp_dir();
  const auto path = make_torchscript(dir + "/plain.pt", /*with_attributes=*/false);
  EXPECT_THROW(load_policy(path), UsageError);  // latent shape unknown
  PolicyOptions o;
  o.latent_shape = {3, 4, 4};
  auto p = load_policy(path, o);
  auto& ts = dynamic_cast<TorchScriptPolicy&>(*p);
  EXPECT_FALSE(ts.timestep_is_1000_sigma());
  EXPECT_FALSE(ts.negates_output());
  Conditioning tokens_only;
  tokens_only.tokens = torch::zeros({1, 3}, torch::kLong);
  EXPECT_THROW(p->velocity(torch::randn({1, 3, 4, 4}), torch::ones({1}), tokens_only), UsageError);
  o.timestep_convention = "seconds";
  EXPECT_THROW(load_policy(path, o), UsageError);
}

TEST(Model, SamplingStepsRunOnThePolicy) {
  // The flow core and a policy together: an ODE trajectory from noise stays finite and the
  // stochastic step's stored log-probability replays exactly.
  BuiltinPolicy p(tiny(), Tokenizer(Tokenizer::default_words()), 5);
  p.set_trainable(".*");
  train_step(p, p.encode({"a red circle"}));
  const auto c = p.encode({"a red circle"});
  auto x = torch::randn({1, 3, 8, 8});
  const std::vector<double> sig{1.0, 0.8, 0.5, 0.0};
  const auto v = p.velocity(x, torch::full({1}, sig[0]), c).detach();
  const auto step = flow::sde_step(flow::Kernel::flowgrpo, x, v, {sig[0], sig[1], sig[1]}, 0.7, torch::randn_like(x),
                                   flow::Reduction::mean);
  const auto replay = flow::transition(flow::Kernel::flowgrpo, x, p.velocity(x, torch::full({1}, sig[0]), c),
                                       {sig[0], sig[1], sig[1]}, 0.7);
  EXPECT_TRUE(torch::equal(flow::log_prob(step.next, replay, flow::Reduction::mean).detach(), step.log_prob));
  for (int i = 1; i < 3; ++i) x = flow::ode_step(step.next, p.velocity(step.next, torch::full({1}, sig[i]), c), {sig[i], sig[i + 1], sig[1]});
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
}

// GPU checks: named *_CUDA, they skip cleanly where libtorch has no CUDA device (CI).
TEST(Model, SameVelocityAndStepOnCuda_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  BuiltinPolicy p(tiny(), Tokenizer(Tokenizer::default_words()), 6);
  p.set_trainable(".*");
  train_step(p, p.encode({"a red circle"}));
  const auto c = p.encode({"a red circle", "two blue squares"});
  const auto x = torch::randn({2, 3, 8, 8}), s = torch::tensor({0.9f, 0.4f});
  const auto cpu = p.velocity(x, s, c).detach();
  p.place({torch::Device(torch::kCUDA), torch::kFloat});
  const auto gpu = p.velocity(x, s, c).detach().cpu();
  EXPECT_TRUE(torch::allclose(cpu, gpu, 1e-4, 1e-5));
  const auto eps = torch::randn_like(x);
  const auto a = flow::sde_step(flow::Kernel::flowgrpo, x, cpu, {0.9, 0.7, 0.9}, 0.7, eps, flow::Reduction::mean);
  const auto b = flow::sde_step(flow::Kernel::flowgrpo, x.cuda(), gpu.cuda(), {0.9, 0.7, 0.9}, 0.7, eps.cuda(),
                                flow::Reduction::mean);
  EXPECT_TRUE(torch::allclose(a.log_prob, b.log_prob.cpu(), 1e-5, 1e-5));
}

TEST(Runtime, LibtorchErrorsBecomeOneLineMessages) {
  try {
    torch::mm(torch::ones({2, 3}), torch::ones({2, 3}));
    FAIL() << "mismatched shapes multiplied";
  } catch (const std::exception& e) {
    int code = 0;
    std::string message;
    ASSERT_TRUE(runtime::translate_torch_error(e, &code, &message));
    EXPECT_EQ(code, 70);
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.rfind("libtorch: ", 0), 0u) << message;
  }
  int code = 0;
  std::string message;
  EXPECT_FALSE(runtime::translate_torch_error(std::runtime_error("x"), &code, &message));
}

TEST(Model, GeluTanhIsTorchsTanhGeluWithItsGradient) {
  torch::manual_seed(4);
  // float64: the same function and derivative to rounding, over the range activations take.
  const auto x = (torch::randn({4096}, torch::kDouble) * 4).requires_grad_(true);
  const auto w = torch::randn({4096}, torch::kDouble);
  const auto want = torch::gelu(x, "tanh");
  const auto got = model::gelu_tanh(x);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-12);
  const auto g_want = torch::autograd::grad({(want * w).sum()}, {x})[0];
  const auto g_got = torch::autograd::grad({(got * w).sum()}, {x})[0];
  EXPECT_LT((g_got - g_want).abs().max().item<double>(), 1e-12);
  // float32, without a graph (the rollout's path) and with one.
  const auto xf = x.detach().to(torch::kFloat);
  {
    torch::NoGradGuard ng;
    EXPECT_LT((model::gelu_tanh(xf) - torch::gelu(xf, "tanh")).abs().max().item<double>(), 2e-6);
  }
  EXPECT_TRUE(torch::equal(model::gelu_tanh(xf), model::gelu_tanh(xf.clone().requires_grad_(true)).detach()));
  // Other dtypes keep libtorch's kernel.
  const auto xb = xf.to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(model::gelu_tanh(xb), torch::gelu(xb, "tanh")));
}
