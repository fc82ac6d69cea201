// The reward model: the Llama decoder plus a linear `score` head read at each sequence's last
// real token, saved as Hugging Face's LlamaForSequenceClassification (`score.weight`).
#pragma once

#include <torch/torch.h>

#include <string>

#include "trainer/model/llama.h"

namespace flywheel {

class LlamaForSequenceClassificationImpl
    : public torch::nn::Cloneable<LlamaForSequenceClassificationImpl> {
 public:
  explicit LlamaForSequenceClassificationImpl(const ModelConfig& config) : config_(config) {
    reset();
  }
  void reset() override;
  // in.attention_mask must be the [B, T] padding mask (right padding) -> scores [B, num_labels]
  // taken at the last position whose mask is 1.
  torch::Tensor forward(const DecoderInput& in);
  // The head at every position -> [B, T, num_labels]: a PPO critic's value of each prefix.
  torch::Tensor token_scores(const DecoderInput& in);

  const ModelConfig& config() const { return config_; }

  LlamaModel model{nullptr};
  Linear score{nullptr};  // C -> num_labels, no bias

 private:
  ModelConfig config_;
};
TORCH_MODULE(LlamaForSequenceClassification);

// The sequence-classification config for a causal LM config (architecture renamed, 1 label).
ModelConfig reward_config_from(const ModelConfig& causal);

}  // namespace flywheel
