// Supervised fine-tuning: next-token cross-entropy on the trained (non-ignored) label tokens.
//
// Shapes: B = batch, T = time (tokens), V = vocab.
#pragma once

#include <torch/torch.h>

#include <string>

#include "losses/logprobs.h"

namespace flywheel::losses {

enum class SftReduction {
  kTokenMean,  // Σ over trained tokens / their count: every token weighs the same
  kSum,        // Σ over trained tokens; the caller divides (e.g. by tokens across ranks)
};

// "token_mean" | "sum"; UserError naming the valid values otherwise.
SftReduction parse_sft_reduction(const std::string& name);

struct SftLoss {
  torch::Tensor loss;         // [] differentiable
  torch::Tensor token_count;  // [] int64, trained tokens in the batch
};

// loss = -Σ_{b,t} log p(labels[b, t+1] | logits[b, t]) over labels != kIgnoreIndex, divided
// by max(token_count, 1) for kTokenMean.
//   logits [B, T, V], labels [B, T] int64
SftLoss sft_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                 SftReduction reduction = SftReduction::kTokenMean);
// The same from the label log-probs (e.g. sequence_logps through a chunked LM head).
SftLoss sft_loss(const SequenceLogps& logps, SftReduction reduction = SftReduction::kTokenMean);

}  // namespace flywheel::losses
