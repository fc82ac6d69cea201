#include "losses/kl.h"

namespace flywheel::losses {

torch::Tensor kl_k1(const torch::Tensor& logps, const torch::Tensor& ref_logps) {
  return logps - ref_logps;
}

torch::Tensor kl_k2(const torch::Tensor& logps, const torch::Tensor& ref_logps) {
  return (ref_logps - logps).square() / 2;
}

torch::Tensor kl_k3(const torch::Tensor& logps, const torch::Tensor& ref_logps) {
  // Clamped so that a token the reference all but rules out (logr near -inf, or +inf when the
  // policy does) gives a large finite penalty rather than inf or NaN: exp(20) ≈ 4.9e8 fits
  // float32 and bfloat16.
  const auto logr = (ref_logps - logps).clamp(-kK3MaxLogRatio, kK3MaxLogRatio);
  // expm1 keeps the precision that exp(logr) - 1 loses when π and ref nearly agree.
  return torch::expm1(logr) - logr;
}

}  // namespace flywheel::losses
