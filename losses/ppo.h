// PPO with a learned value function, per token (as TRL's PPOTrainer and OpenRLHF):
//   GAE      δ_t = r_t + γ·V_{t+1} - V_t,  A_t = δ_t + γλ·A_{t+1},  returns R_t = A_t + V_t
//   policy   ratio = exp(log π - log π_old)
//            loss = masked_mean(max(-A·ratio, -A·clamp(ratio, 1-ε, 1+ε)))
//   value    loss = 0.5·masked_mean(max((V - R)², (clamp(V, V_old ± ε_v) - R)²))
// Advantages are usually whitened (masked_whiten in losses/masked.h) before the policy loss.
//
// Shapes: B = batch (sequences), T = time (response tokens); mask [B, T] marks real tokens.
#pragma once

#include <torch/torch.h>

namespace flywheel::losses {

struct PpoOptions {
  double gamma = 1.0;            // [0, 1] discount
  double lam = 0.95;             // [0, 1] GAE λ
  double cliprange = 0.2;        // > 0, ε for the policy ratio
  double cliprange_value = 0.2;  // > 0, ε_v for the value prediction

  void validate() const;  // UserError naming the option
};

struct Gae {
  torch::Tensor advantages;  // [B, T] 0 outside the mask
  torch::Tensor returns;     // [B, T] advantages + values, 0 outside the mask
};

// Generalized advantage estimation. Positions outside the mask count as reward 0 and value 0,
// so each sequence bootstraps from 0 past its last token. No gradient flows (the inputs are a
// finished rollout).
//   rewards [B, T], values [B, T] (V_old), mask [B, T]
Gae gae(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask,
        const PpoOptions& options = {});

struct PpoPolicyLoss {
  torch::Tensor loss;      // [] differentiable in logps
  torch::Tensor clipfrac;  // [] detached, masked_mean(|ratio - 1| > ε)
};

// logps [B, T] log π (differentiable), old_logps [B, T] log π_old, advantages [B, T], mask
PpoPolicyLoss ppo_policy_loss(const torch::Tensor& logps, const torch::Tensor& old_logps,
                              const torch::Tensor& advantages, const torch::Tensor& mask,
                              const PpoOptions& options = {});

struct PpoValueLoss {
  torch::Tensor loss;      // [] differentiable in values
  torch::Tensor clipfrac;  // [] detached, share of tokens where the clipped term is larger
};

// values [B, T] V (differentiable), old_values [B, T] V_old, returns [B, T], mask
PpoValueLoss ppo_value_loss(const torch::Tensor& values, const torch::Tensor& old_values,
                            const torch::Tensor& returns, const torch::Tensor& mask,
                            const PpoOptions& options = {});

}  // namespace flywheel::losses
