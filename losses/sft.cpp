#include "losses/sft.h"

#include "losses/logprobs.h"
#include "trainer/core/error.h"

namespace flywheel::losses {

SftReduction parse_sft_reduction(const std::string& name) {
  if (name == "token_mean") return SftReduction::kTokenMean;
  if (name == "sum") return SftReduction::kSum;
  throw UserError("unknown SFT loss reduction '" + name + "' (expected token_mean or sum)");
}

SftLoss sft_loss(const torch::Tensor& logits, const torch::Tensor& labels, SftReduction reduction) {
  return sft_loss(sequence_logps(logits, labels), reduction);
}

SftLoss sft_loss(const SequenceLogps& logps, SftReduction reduction) {
  SftLoss out;
  out.token_count = logps.count.sum();
  out.loss = -logps.sum.sum();
  if (reduction == SftReduction::kTokenMean) {
    out.loss = out.loss / out.token_count.clamp_min(1).to(out.loss.scalar_type());
  }
  return out;
}

}  // namespace flywheel::losses
