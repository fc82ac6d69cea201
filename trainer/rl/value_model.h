// PPO's critic: a Llama decoder with a scalar head read at every position (a
// LlamaForSequenceClassification, saved as Hugging Face writes one), trained by its own
// optimizer. It starts from rl.value_model (a reward model as it is, or a causal LM whose
// lm_head gives way to a fresh head) or else from the policy's own weights; a fresh head starts
// at zero, so every first value is 0 and the first advantages are the rewards themselves rather
// than rewards plus noise.
//
// Shapes: B = samples in a micro-batch, T = their longest prompt + response.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "trainer/dist/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/model/reward_model.h"
#include "trainer/optim/optimizer.h"
#include "trainer/rl/rl_batch.h"
#include "trainer/train/recipe.h"

namespace flywheel {

class ValueModel {
 public:
  ValueModel(const Recipe& recipe, const LlamaForCausalLM& policy, Communicator& comm);

  LlamaForSequenceClassification& module() { return critic_; }
  Optimizer& optimizer() { return *optimizer_; }

  // Each sample's values V_old of its response tokens (the value of the prefix each token is
  // sampled from), `micro` samples a forward, without gradients.
  void assign_values(std::vector<RlSample>& samples, int64_t micro, int64_t pad_id);

  // [B, T-1] float32 values of the micro-batch in the layout of its old_values (position t
  // holds the value of the prefix that token t + 1 was sampled from), differentiable.
  torch::Tensor values(const RlMicroBatch& mb);

 private:
  LlamaForSequenceClassification critic_{nullptr};
  std::unique_ptr<Optimizer> optimizer_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace flywheel
