#include "losses/masked.h"

namespace flywheel::losses {
namespace {

// x where the mask holds, 0 elsewhere (masked_fill keeps NaN outside the mask out of sums and
// out of gradients, where x * mask would not).
torch::Tensor select(const torch::Tensor& x, const torch::Tensor& mask) {
  TORCH_CHECK(x.sizes() == mask.sizes(), "mask shape ", mask.sizes(), " must equal x shape ",
              x.sizes());
  return x.masked_fill(mask.logical_not(), 0);
}

torch::Tensor count(const torch::Tensor& mask, const torch::Tensor& like) {
  return mask.to(torch::kBool).sum().to(like.scalar_type());
}

torch::Tensor count(const torch::Tensor& mask, const torch::Tensor& like, int64_t dim) {
  return mask.to(torch::kBool).sum(dim).to(like.scalar_type());
}

}  // namespace

torch::Tensor masked_sum(const torch::Tensor& x, const torch::Tensor& mask) {
  return select(x, mask).sum();
}

torch::Tensor masked_sum(const torch::Tensor& x, const torch::Tensor& mask, int64_t dim) {
  return select(x, mask).sum(dim);
}

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  return masked_sum(x, mask) / count(mask, x).clamp_min(1);
}

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask, int64_t dim) {
  return masked_sum(x, mask, dim) / count(mask, x, dim).clamp_min(1);
}

torch::Tensor masked_whiten(const torch::Tensor& x, const torch::Tensor& mask, bool shift_mean) {
  const auto n = count(mask, x);
  TORCH_CHECK(n.item<double>() >= 2, "masked_whiten needs at least two entries in the mask, got ",
              n.item<double>());
  const auto mean = masked_mean(x, mask);
  const auto centered = x - mean;
  const auto var = masked_sum(centered * centered, mask) / (n - 1);
  auto whitened = centered * torch::rsqrt(var + 1e-8);
  if (!shift_mean) whitened = whitened + mean;
  return select(whitened, mask);
}

}  // namespace flywheel::losses
