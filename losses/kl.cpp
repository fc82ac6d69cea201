#include "losses/kl.h"

namespace flywheel::losses {

torch::Tensor kl_k1(const torch::Tensor& logps, const torch::Tensor& ref_logps) {
  return logps - ref_logps;
}

torch::Tensor kl_k2(const torch::Tensor& logps, const torch::Tensor& ref_logps) {
  return (ref_logps - logps).square() / 2;
}

torch::Tensor kl_k3(const torch::Tensor& logps, const torch::Tensor& ref_logps) {
  const auto logr = ref_logps - logps;
  // expm1 keeps the precision that exp(logr) - 1 loses when π and ref nearly agree.
  return torch::expm1(logr) - logr;
}

}  // namespace flywheel::losses
