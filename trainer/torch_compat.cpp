#include "trainer/torch_compat.h"

#include <cmath>

namespace flywheel::compat {

torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, const torch::Tensor& mask,
                                           bool is_causal) {
#if FLYWHEEL_HAS_SDPA
  c10::optional<at::Tensor> attn_mask;
  if (mask.defined()) attn_mask = mask;
  return at::scaled_dot_product_attention(q, k, v, attn_mask, /*dropout_p=*/0.0,
                                          is_causal && !mask.defined());
#else
  // Same arithmetic as Hugging Face's eager attention: scores in the input dtype, softmax in
  // float32, cast back before multiplying by V.
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, T, S]
  if (mask.defined()) {
    scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  } else if (is_causal) {
    const auto T = q.size(-2), S = k.size(-2);
    auto causal = torch::ones({T, S}, q.options().dtype(torch::kBool)).tril(S - T);
    scores = scores.masked_fill(causal.logical_not(), -std::numeric_limits<float>::infinity());
  }
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  return torch::matmul(probs, v);
#endif
}

}  // namespace flywheel::compat
