#include "trainer/rl/value_model.h"

#include <map>
#include <string>

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/train/train_loop.h"

namespace flywheel {

ValueModel::ValueModel(const Recipe& recipe, const LlamaForCausalLM& policy, Communicator& comm)
    : device_(policy->parameters().front().device()) {
  const auto& config = policy->config();
  if (!recipe.rl.value_model.empty()) {
    critic_ = load_reward_model(recipe.rl.value_model, config.dtype, device_, /*init_std=*/0.0,
                                recipe.seed);
    // It reads the policy's token ids and gives one value each.
    const auto& c = critic_->config();
    if (c.vocab_size != config.vocab_size || c.num_labels != 1) {
      throw UserError(recipe.source + ": rl.value_model " + recipe.rl.value_model + " has " +
                      std::to_string(c.vocab_size) + " tokens and " + std::to_string(c.num_labels) +
                      " labels; the critic needs the policy's " +
                      std::to_string(config.vocab_size) + " tokens and 1 label");
    }
  } else {
    auto critic_config = reward_config_from(config);
    critic_ = LlamaForSequenceClassification(critic_config);
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& [name, p] : named_parameters(*policy)) {
      if (name != "lm_head.weight") tensors[name] = p.detach();
    }
    tensors["score.weight"] = torch::zeros({critic_config.num_labels, critic_config.hidden_size});
    load_parameters(*critic_, tensors, critic_config, "the policy");
  }
  critic_->model->activation_checkpointing = recipe.training.activation_checkpointing;
  optimizer_ = std::make_unique<Optimizer>(*critic_, optimizer_options(recipe), comm);
}

void ValueModel::assign_values(std::vector<RlSample>& samples, int64_t micro, int64_t pad_id) {
  const c10::InferenceMode no_grad;
  const auto step = static_cast<size_t>(micro);
  for (size_t start = 0; start < samples.size(); start += step) {
    std::vector<const RlSample*> part;
    for (size_t i = start; i < std::min(samples.size(), start + step); ++i)
      part.push_back(&samples[i]);
    const auto mb = make_rl_micro_batch(part, pad_id, device_);
    const auto v = values(mb).cpu();
    for (size_t i = 0; i < part.size(); ++i) {
      RlSample& s = samples[start + i];
      const auto row = v[static_cast<int64_t>(i)]
                           .narrow(0, s.prompt_length - 1, s.response_length())
                           .to(torch::kFloat64)
                           .contiguous();
      s.values.assign(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
    }
  }
}

torch::Tensor ValueModel::values(const RlMicroBatch& mb) {
  DecoderInput in(mb.batch.input_ids, mb.batch.position_ids, mb.batch.attention_mask);
  in.right_padded = mb.batch.right_padded;
  const auto scores = critic_->token_scores(in).squeeze(-1);  // [B, T]
  return scores.narrow(1, 0, scores.size(1) - 1).to(torch::kFloat32);
}

}  // namespace flywheel
