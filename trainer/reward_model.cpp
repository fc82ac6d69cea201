#include "trainer/reward_model.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>

#include "trainer/error.h"
#include "trainer/hf_checkpoint.h"
#include "trainer/safetensors.h"

namespace flywheel {

void LlamaForSequenceClassificationImpl::reset() {
  model = register_module("model", LlamaModel(config_));
  score = register_module(
      "score", torch::nn::Linear(
                   torch::nn::LinearOptions(config_.hidden_size, config_.num_labels).bias(false)));
}

torch::Tensor LlamaForSequenceClassificationImpl::forward(const DecoderInput& in) {
  TORCH_CHECK(in.attention_mask.defined() && in.attention_mask.dim() == 2,
              "reward model forward needs the [B, T] padding mask");
  auto hidden = model(in);  // [B, T, C]
  const auto T = hidden.size(1);
  // Last real token: the largest index whose mask is 1 (robust to any padding side).
  auto positions = torch::arange(T, in.attention_mask.options().dtype(torch::kInt64));
  auto last = (positions * in.attention_mask.to(torch::kInt64)).argmax(1);  // [B]
  auto picked = hidden.gather(1, last.view({-1, 1, 1}).expand({-1, 1, hidden.size(2)}));
  return score(picked.squeeze(1));  // [B, num_labels]
}

ModelConfig reward_config_from(const ModelConfig& causal) {
  ModelConfig c = causal;
  const auto pos = c.architecture.find("ForCausalLM");
  if (pos != std::string::npos) c.architecture.replace(pos, 11, "ForSequenceClassification");
  c.num_labels = 1;
  return c;
}

LlamaForSequenceClassification load_reward_model(const std::string& dir, torch::Dtype dtype,
                                                 const torch::Device& device, double init_std,
                                                 uint64_t seed) {
  auto config = load_model_config((std::filesystem::path(dir) / "config.json").string());
  const bool from_causal = !config.is_sequence_classification();
  if (from_causal) config = reward_config_from(config);
  config.dtype = dtype;
  LlamaForSequenceClassification rm(config);
  auto tensors = load_safetensors_dir(dir);
  if (from_causal) {
    tensors.erase("lm_head.weight");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    tensors["score.weight"] =
        at::normal(0.0, init_std, {config.num_labels, config.hidden_size}, gen);
  }
  rm->to(device, dtype);
  load_parameters(*rm, tensors, config, dir);
  return rm;
}

}  // namespace flywheel
