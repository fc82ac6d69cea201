// The row-wise half of the LM head's label log-probs (logprobs.h) on logits [N, V]: each row's
// log-probability of its target and log-sum-exp, and the gradient that flows back into the
// logits. An AVX-512 kernel for float32 CPU logits makes each a single pass over a row while
// it is in cache; elsewhere (GPU, bfloat16, float64, other CPUs) LibTorch ops do the same a
// block of rows at a time, upcast to logps_dtype.
#pragma once

#include <torch/torch.h>

namespace flywheel::losses {

struct RowLogps {
  torch::Tensor picked;  // [N] log_softmax(logits[i])[targets[i]], in logps_dtype
  torch::Tensor lse;     // [N] logsumexp(logits[i]), in logps_dtype
};

//   logits [N, V], targets [N] int64 in [0, V)
RowLogps row_logps(const torch::Tensor& logits, const torch::Tensor& targets);

// d/d logits of Σ_i grad[i] * picked[i]: grad[i] * (onehot(targets[i]) - softmax(logits[i])),
// the softmax taken from the forward's lse.
//   logits [N, V], lse [N], targets [N], grad [N] -> [N, V] in logits' dtype
torch::Tensor row_logps_backward(const torch::Tensor& logits, const torch::Tensor& lse,
                                 const torch::Tensor& targets, const torch::Tensor& grad);

}  // namespace flywheel::losses
