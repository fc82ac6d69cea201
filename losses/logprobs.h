// Log-probabilities of label tokens under a causal LM's logits: the quantity SFT, DPO,
// reward-free preference losses and PPO/GRPO all start from.
//
// Shapes: B = batch, T = time (tokens), V = vocab.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "trainer/core/labels.h"

namespace flywheel::losses {

// The float type log-softmax is computed in: float64 stays float64, everything else
// (bfloat16, float16, float32) becomes float32.
torch::ScalarType logps_dtype(torch::ScalarType logits_dtype);

// log softmax(logits)[target] = logits[target] - logsumexp(logits), in logps_dtype. No second
// [B, T, V] tensor of log-probs is built, and bfloat16/float16 logits are upcast one batch row
// at a time, so scoring without autograd (reference model, rollouts) holds a float32 copy of
// [T, V] rather than [B, T, V]. Differentiable.
//   logits  [B, T, V]
//   targets [B, T] int64, each in [0, V)
//   ->      [B, T]
torch::Tensor gather_logps(const torch::Tensor& logits, const torch::Tensor& targets);

struct SequenceLogps {
  torch::Tensor token_logps;  // [B, T-1] log p(labels[:, t+1] | logits[:, t]), 0 where ignored
  torch::Tensor sum;          // [B] Σ token_logps
  torch::Tensor count;        // [B] int64, labels != kIgnoreIndex after the shift
  torch::Tensor mean;         // [B] sum / max(count, 1)
};

// Next-token log-probs of `labels` under `logits`: labels[:, 1:] scored by logits[:, :-1],
// positions whose label is kIgnoreIndex masked out. Differentiable in logits.
//   logits [B, T, V], labels [B, T] int64
SequenceLogps sequence_logps(const torch::Tensor& logits, const torch::Tensor& labels);

// gather_logps(hidden @ weight^T, targets), the row-wise work in one pass a row
// (softmax_rows.h). chunk > 0 never holds more than `chunk` rows of logits: each chunk's
// logits are formed, reduced to log-probs and dropped, and formed again in backward (the
// "fused linear cross-entropy" idea; with a 128k vocabulary the logits are the largest buffer
// of SFT and DPO), the weight's gradient summed over chunks in logps_dtype. chunk == 0 forms
// all rows' logits at once and keeps them for backward. Differentiable in hidden and weight.
//   hidden [N, C], weight [V, C] (an LM head), targets [N] int64 in [0, V) -> [N] logps_dtype
torch::Tensor linear_gather_logps(const torch::Tensor& hidden, const torch::Tensor& weight,
                                  const torch::Tensor& targets, int64_t chunk);

// sequence_logps(hidden @ head_weight^T, labels) with the logits of only the scored positions
// (linear_gather_logps; chunk <= 0 takes them all at once): prompts and padding never go
// through the head.
//   hidden [B, T, C], head_weight [V, C], labels [B, T] int64
SequenceLogps sequence_logps(const torch::Tensor& hidden, const torch::Tensor& head_weight,
                             const torch::Tensor& labels, int64_t chunk);

}  // namespace flywheel::losses
