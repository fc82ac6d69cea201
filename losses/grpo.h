// GRPO (DeepSeekMath): PPO without a value function. Each prompt is sampled group_size times
// and a response's advantage is its reward relative to its group:
//   standard  A = (r - mean_group) / (std_group + eps)   population std (divide by G)
//   centered  A = r - mean_group                          (Dr. GRPO: no std scaling)
//   rloo      A = r - mean of the group's other responses (RLOO's leave-one-out baseline:
//             G/(G-1) · (r - mean_group))
// The same A applies to every token of the response:
//   loss_t = max(-A·ratio_t, -A·clamp(ratio_t, 1-ε, 1+ε)) + β·k3_t
// with ratio = exp(log π - log π_old) and k3 on logr = log ref - log π (losses/kl.h), then
//   token_mean     Σ over every unmasked token / their count (each token weighs the same)
//   sequence_mean  mean over each response's tokens, then over responses (the original GRPO)
//
// Shapes: N = responses (groups × group_size, a group's responses consecutive),
// T = time (response tokens); mask [N, T] marks real tokens.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace flywheel::losses {

enum class GrpoAdvantage { kStandard, kCentered, kLeaveOneOut };
enum class LossAggregation { kTokenMean, kSequenceMean };

// "standard" | "centered" | "rloo" and "token_mean" | "sequence_mean"; UserError otherwise.
GrpoAdvantage parse_grpo_advantage(const std::string& name);
LossAggregation parse_loss_aggregation(const std::string& name);

struct GrpoOptions {
  int64_t group_size = 8;  // >= 2 responses per prompt
  GrpoAdvantage advantage = GrpoAdvantage::kStandard;
  double eps = 1e-8;   // > 0, keeps A finite when a group ties
  double clip = 0.2;   // > 0, ε for the ratio
  double beta = 0.05;  // >= 0, k3 penalty; 0 needs no reference
  LossAggregation aggregation = LossAggregation::kTokenMean;

  void validate() const;  // UserError naming the option
};

// rewards [N] with N a multiple of group_size -> advantages [N]. No gradient.
torch::Tensor grpo_advantages(const torch::Tensor& rewards, const GrpoOptions& options = {});

struct GrpoLoss {
  torch::Tensor loss;         // [] differentiable in logps
  torch::Tensor kl;           // [] detached, token mean of k3 (0 when beta is 0)
  torch::Tensor clipfrac;     // [] detached, token mean of |ratio - 1| > ε
  torch::Tensor token_count;  // [] int64, unmasked tokens (to combine token means across ranks)
};

// logps [N, T] log π (differentiable), old_logps [N, T] log π_old, ref_logps [N, T] log ref
// (undefined allowed when beta is 0), advantages [N], mask [N, T].
GrpoLoss grpo_loss(const torch::Tensor& logps, const torch::Tensor& old_logps,
                   const torch::Tensor& ref_logps, const torch::Tensor& advantages,
                   const torch::Tensor& mask, const GrpoOptions& options = {});

}  // namespace flywheel::losses
