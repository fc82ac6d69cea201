// What PPO learns from a finished rollout: per-token rewards (the KL penalty on every token, the
// response's reward on its last), GAE advantages over the critic's values and the returns the
// critic regresses to; then the advantages whitened over the whole iteration, every rank's
// tokens together (as TRL's PPOTrainer whitens its whole batch), so the result does not depend
// on the number of ranks.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "losses/ppo.h"
#include "trainer/dist/communicator.h"
#include "trainer/rl/rl_batch.h"

namespace flywheel {

struct PpoTargetOptions {
  double kl_coef = 0.05;   // β; 0 needs no reference log-probs
  bool k3 = false;         // the per-token KL estimator: k1 (log π - log ref) or k3
  losses::PpoOptions gae;  // gamma, lam
};

// Fills each sample's token_advantages (not yet whitened) and returns from its reward, its
// values and its old log-probs; reference[i] holds sample i's reference log-probs of its
// response tokens (float32 [response_length]; ignored when kl_coef is 0). Returns each sample's
// KL summed over its tokens (0 without a reference).
std::vector<double> ppo_targets(std::vector<RlSample>& samples,
                                const std::vector<torch::Tensor>& reference,
                                const PpoTargetOptions& options);

// (A - mean) / sqrt(var + 1e-8) over every response token of every rank's samples, with the
// unbiased variance (losses::masked_whiten's formula). Fewer than two tokens: left as they are.
void whiten_advantages(std::vector<RlSample>& samples, Communicator& comm);

}  // namespace flywheel
