// Reward-model losses over scalar scores.
//   Bradley–Terry  loss = mean(-log σ(s_c - s_r - m)) + c·mean((s_c + s_r)²)
//     with an optional per-pair margin m (Llama 2) and centering coefficient c, which pulls
//     scores towards zero mean without changing which response is preferred.
//   Plackett–Luce  for K ranked responses s_(1) ≻ … ≻ s_(K):
//     loss_b = -Σ_{i=1}^{K-1} [s_(i) - logsumexp(s_(i), …, s_(K))],  loss = mean_b loss_b
//     the likelihood of picking the best response, then the best of the rest, and so on;
//     K = 2 is Bradley–Terry.
//
// Shapes: B = batch, K = responses per prompt.
#pragma once

#include <torch/torch.h>

namespace flywheel::losses {

struct BradleyTerryOptions {
  double center_coefficient = 0.0;  // >= 0; 0 disables centering

  void validate() const;  // UserError naming the option
};

struct BradleyTerryLoss {
  torch::Tensor loss;      // [] differentiable
  torch::Tensor accuracy;  // [] detached, mean(s_c > s_r)
  torch::Tensor margin;    // [] detached, mean(s_c - s_r)
};

// chosen_scores, rejected_scores [B]; margins [B] or undefined (no margin).
BradleyTerryLoss bradley_terry_loss(const torch::Tensor& chosen_scores,
                                    const torch::Tensor& rejected_scores,
                                    const torch::Tensor& margins = {},
                                    const BradleyTerryOptions& options = {});

struct PlackettLuceLoss {
  torch::Tensor loss;              // [] mean of per_example_loss, differentiable
  torch::Tensor per_example_loss;  // [B] differentiable
};

// scores [B, K]; ranking [B, K] int64, each row a permutation of 0..K-1, best first.
PlackettLuceLoss plackett_luce_loss(const torch::Tensor& scores, const torch::Tensor& ranking);

}  // namespace flywheel::losses
