// Causal self-attention on float32 CPU tensors, forward and backward, for training's short
// sequences (the rows of a micro-batch, the paths of a prefix tree). ATen's CPU flash kernel
// multiplies each head's blocks through the BLAS, and at head_dim 8-64 and a few dozen to a
// few hundred positions the calls cost more than their arithmetic: here each (row, KV head)
// is one task that holds its keys and values transposed in cache and computes the scores,
// softmax and weighted sums of all its query heads in registers. Forward keeps each query's
// log-sum-exp; backward recomputes the probabilities from it (as flash attention does).
// grouped_attention (trainer/model/kv_cache.h) takes it where causal_attention_cpu_applies().
#pragma once

#include <torch/torch.h>

namespace flywheel {

// q [R, H, T, D] and k/v [R, K, T, D] on the CPU in float32, H a multiple of K, D a multiple
// of 8 (up to 256), T up to 512, and an AVX-512 CPU.
bool causal_attention_cpu_applies(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v);

// softmax(q k^T / sqrt(D) + causal mask) v, each query head attending to KV head h / (H / K).
// Differentiable in q, k and v.  -> [R, H, T, D]
torch::Tensor causal_attention_cpu(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v);

}  // namespace flywheel
