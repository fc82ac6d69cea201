// Per-token estimators of KL(π ‖ ref) from sampled tokens (Schulman, "Approximating KL
// divergence"), with logr = log ref(x) - log π(x) for x ~ π:
//   k1 = -logr                  unbiased, high variance, can be negative
//   k2 = logr² / 2              biased, low variance, >= 0
//   k3 = exp(logr) - 1 - logr   unbiased, low variance, >= 0 (GRPO's penalty); logr is clamped
//                               to ±kK3MaxLogRatio first, so the exponential cannot overflow
//
// Shapes: any; both arguments share it (typically [B, T]) and so does the result.
#pragma once

#include <torch/torch.h>

namespace flywheel::losses {

constexpr double kK3MaxLogRatio = 20.0;

torch::Tensor kl_k1(const torch::Tensor& logps, const torch::Tensor& ref_logps);
torch::Tensor kl_k2(const torch::Tensor& logps, const torch::Tensor& ref_logps);
torch::Tensor kl_k3(const torch::Tensor& logps, const torch::Tensor& ref_logps);

}  // namespace flywheel::losses
