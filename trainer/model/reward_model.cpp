#include "trainer/model/reward_model.h"

namespace flywheel {

void LlamaForSequenceClassificationImpl::reset() {
  model = register_module("model", LlamaModel(config_));
  score = register_module("score", Linear(config_.hidden_size, config_.num_labels, /*bias=*/false,
                                          config_.parameter_options()));
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

torch::Tensor LlamaForSequenceClassificationImpl::token_scores(const DecoderInput& in) {
  return score(model(in));
}

ModelConfig reward_config_from(const ModelConfig& causal) {
  ModelConfig c = causal;
  const auto pos = c.architecture.find("ForCausalLM");
  if (pos != std::string::npos) c.architecture.replace(pos, 11, "ForSequenceClassification");
  c.num_labels = 1;
  return c;
}

}  // namespace flywheel
