// Strict checkpoint loading: every missing, unexpected or mis-shaped tensor is named.
#include <gtest/gtest.h>

#include "tests/fixtures.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/core/error.h"
#include "trainer/model/init.h"

namespace flywheel {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 32;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  return c;
}

std::string load_error(const std::map<std::string, torch::Tensor>& tensors) {
  LlamaForCausalLM model(small_config());
  try {
    load_parameters(*model, tensors, small_config(), "ckpt");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

std::map<std::string, torch::Tensor> state_of(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [n, t] : named_parameters(m))
    out[n] = t.detach().clone();
  return out;
}

TEST(HfCheckpoint, StrictLoadNamesTheOffendingTensor) {
  LlamaForCausalLM source(small_config());
  init_weights(*source, 0.02, 1);
  const auto good = state_of(*source);
  EXPECT_EQ(load_error(good), "");

  auto missing = good;
  missing.erase("model.layers.1.mlp.up_proj.weight");
  EXPECT_NE(load_error(missing).find("missing tensor 'model.layers.1.mlp.up_proj.weight'"),
            std::string::npos)
      << load_error(missing);

  auto extra = good;
  extra["model.layers.2.mlp.up_proj.weight"] = torch::zeros({24, 16});
  EXPECT_NE(load_error(extra).find("unexpected tensor 'model.layers.2.mlp.up_proj.weight'"),
            std::string::npos)
      << load_error(extra);

  auto bad_shape = good;
  bad_shape["model.norm.weight"] = torch::zeros({17});
  EXPECT_NE(load_error(bad_shape).find("'model.norm.weight' has shape [17], expected [16]"),
            std::string::npos)
      << load_error(bad_shape);

  auto legacy = good;  // old transformers checkpoints carried the rotary buffer
  legacy["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch::zeros({2});
  EXPECT_EQ(load_error(legacy), "");
}

// A model is allocated in its dtype and filled once: no float32 copy built first and cast
// (before, every module was made in float32 and initialised at random, which drew from the
// global generator, then cast and overwritten by the load).
TEST(HfCheckpoint, ModelsAreAllocatedInTheirDtypeWithoutARandomInitialisation) {
  auto config = small_config();
  config.dtype = torch::kBFloat16;
  torch::manual_seed(5);
  const auto expected = torch::rand({4});
  torch::manual_seed(5);
  LlamaForCausalLM model(config);
  EXPECT_TRUE(torch::rand({4}).equal(expected)) << "building the model drew random numbers";
  for (const auto& [name, p] : named_parameters(*model))
    EXPECT_EQ(p.scalar_type(), torch::kBFloat16) << name;

  const auto dir = testing::fixtures_dir() + "/llama-tiny";
  FLYWHEEL_REQUIRE_PATH(dir);
  const auto file = load_safetensors_dir(dir);
  auto loaded = load_causal_lm(dir, {torch::kBFloat16, torch::kCPU});
  for (const auto& [name, p] : named_parameters(*loaded)) {
    EXPECT_EQ(p.scalar_type(), torch::kBFloat16) << name;
    EXPECT_TRUE(p.equal(file.at(name).to(torch::kBFloat16))) << name;
  }
}

TEST(HfCheckpoint, TiedEmbeddingsHaveNoHeadParameter) {
  auto config = small_config();
  config.tie_word_embeddings = true;
  LlamaForCausalLM model(config);
  init_weights(*model, 0.02, 1);
  for (auto& [name, t] : named_parameters(*model))
    EXPECT_NE(name, "lm_head.weight");
  torch::NoGradGuard no_grad;
  auto ids = torch::randint(0, 32, {1, 5}, torch::kInt64);
  auto hidden = model->model->forward({ids});
  auto expected = torch::matmul(hidden, model->model->embed_tokens->weight.t());
  EXPECT_TRUE(torch::allclose(model->forward({ids}), expected));
}

TEST(HfCheckpoint, SaveWritesLoadableConfigAndWeights) {
  auto config = small_config();
  config.model_type = "qwen2";
  config.architecture = "Qwen2ForCausalLM";
  config.qkv_bias = true;
  LlamaForCausalLM model(config);
  init_weights(*model, 0.02, 1);
  const auto dir = testing::make_temp_dir("save");
  save_pretrained(dir, *model, config);
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.safetensors"));
  auto again = load_causal_lm(dir);
  EXPECT_EQ(again->config().model_type, "qwen2");
  EXPECT_TRUE(again->config().qkv_bias);
  EXPECT_FALSE(again->config().o_bias);
  auto a = named_parameters(*model), b = named_parameters(*again);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
