#include "rollout/sampler.h"

#include <string>

#include "trainer/core/error.h"

namespace flywheel {

void SamplerOptions::validate(const std::string& prefix) const {
  if (!(temperature > 0)) {
    throw UserError(prefix + "temperature must be > 0, got " + std::to_string(temperature));
  }
  if (top_k < 0) throw UserError(prefix + "top_k must be >= 0, got " + std::to_string(top_k));
  if (!(top_p > 0 && top_p <= 1)) {
    throw UserError(prefix + "top_p must be in (0, 1], got " + std::to_string(top_p));
  }
}

torch::Tensor sample_next(const torch::Tensor& logits, const SamplerOptions& options,
                          torch::Generator& generator) {
  if (options.greedy) return logits.argmax(-1);
  auto scores = logits.to(torch::kFloat32) / options.temperature;  // [B, V]
  const auto neg_inf = -std::numeric_limits<float>::infinity();
  if (options.top_k > 0 && options.top_k < scores.size(-1)) {
    auto kth = std::get<0>(scores.topk(options.top_k, -1)).narrow(-1, options.top_k - 1, 1);
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  if (options.top_p < 1.0) {
    // Keep the smallest prefix of the sorted distribution whose mass reaches top_p; the most
    // likely token is always kept.
    auto [sorted, order] = scores.sort(-1, /*descending=*/true);
    auto cumulative = sorted.softmax(-1).cumsum(-1);
    auto drop_sorted = (cumulative - sorted.softmax(-1)) >= options.top_p;
    auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    scores = scores.masked_fill(drop, neg_inf);
  }
  return torch::multinomial(scores.softmax(-1), 1, /*replacement=*/false, generator).squeeze(-1);
}

}  // namespace flywheel
