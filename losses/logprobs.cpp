#include "losses/logprobs.h"

#include <vector>

namespace flywheel::losses {

torch::ScalarType logps_dtype(torch::ScalarType logits_dtype) {
  return logits_dtype == torch::kDouble ? torch::kDouble : torch::kFloat;
}

torch::Tensor gather_logps(const torch::Tensor& logits, const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 3, "logits must be [B, T, V], got ", logits.sizes());
  TORCH_CHECK(targets.sizes() == logits.sizes().slice(0, 2),
              "targets must be [B, T] = ", logits.sizes().slice(0, 2), ", got ", targets.sizes());
  const auto dtype = logps_dtype(logits.scalar_type());
  const auto score = [dtype](const torch::Tensor& l, const torch::Tensor& t) {
    const auto picked = l.gather(-1, t.unsqueeze(-1)).squeeze(-1).to(dtype);
    return picked - torch::logsumexp(l.to(dtype), -1);
  };
  if (logits.scalar_type() == dtype) return score(logits, targets);
  std::vector<torch::Tensor> rows;
  rows.reserve(logits.size(0));
  for (int64_t b = 0; b < logits.size(0); ++b)
    rows.push_back(score(logits[b], targets[b]));
  return torch::stack(rows);
}

SequenceLogps sequence_logps(const torch::Tensor& logits, const torch::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 2, "labels must be [B, T], got ", labels.sizes());
  const auto shifted_labels = labels.slice(1, 1);       // [B, T-1]
  const auto shifted_logits = logits.slice(1, 0, -1);   // [B, T-1, V]
  const auto trained = shifted_labels != kIgnoreIndex;  // [B, T-1]
  // Ignored positions gather index 0 (any valid index) and are zeroed afterwards.
  const auto targets = shifted_labels.masked_fill(trained.logical_not(), 0);
  const auto token_logps =
      gather_logps(shifted_logits, targets).masked_fill(trained.logical_not(), 0);
  SequenceLogps out;
  out.token_logps = token_logps;
  out.sum = token_logps.sum(1);
  out.count = trained.sum(1);
  out.mean = out.sum / out.count.clamp_min(1).to(out.sum.scalar_type());
  return out;
}

}  // namespace flywheel::losses
