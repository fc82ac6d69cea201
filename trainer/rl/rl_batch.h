// An RL iteration's responses as training data: each sample is a prompt and a sampled response
// with the engine's log-probs of the response tokens, its reward and its verdict; micro-batches
// of samples become the tensors the policy loss reads, laid out like the trainer's label
// log-probs (position t scores token t + 1), so old, reference and new log-probs line up.
//
// Shapes: B = samples in the micro-batch, T = their longest prompt + response.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "trainer/data/batching.h"

namespace flywheel {

struct RlSample {
  std::vector<int64_t> ids;  // prompt + response
  int64_t prompt_length = 0;
  std::vector<double> old_logps;  // per response token, the model's own at temperature 1
  double reward = 0;
  double advantage = 0;  // grpo / rloo: one for the whole response
  bool stopped = false;  // ended with a stop token (not cut at max_new_tokens)
  // ppo, per response token: the critic's values when sampled (V_old), the GAE advantages
  // (whitened) and the returns the critic learns; empty otherwise.
  std::vector<double> values, token_advantages, returns;

  int64_t response_length() const { return static_cast<int64_t>(ids.size()) - prompt_length; }
};

struct RlMicroBatch {
  TokenBatch batch;          // labels: the response tokens
  torch::Tensor mask;        // [B, T-1] float32: 1 where token_logps scores a response token
  torch::Tensor old_logps;   // [B, T-1] float32, 0 off the mask
  torch::Tensor advantages;  // [B] float32
  // ppo: [B, T-1] float32 like old_logps; undefined when the samples carry no per-token values
  torch::Tensor old_values, token_advantages, returns;
  int64_t response_tokens = 0;
};

// On `device`; `pad_id` fills the rows.
RlMicroBatch make_rl_micro_batch(const std::vector<const RlSample*>& samples, int64_t pad_id,
                                 const torch::Device& device);

}  // namespace flywheel
