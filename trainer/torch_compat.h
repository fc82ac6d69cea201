// The one place where LibTorch version differences are handled. Flywheel builds against
// Debian's LibTorch 1.13 (CPU) and LibTorch 2.x (CUDA); everything version-dependent goes
// through the helpers below so the rest of the tree is version-agnostic.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#if TORCH_VERSION_MAJOR >= 2
#define FLYWHEEL_HAS_SDPA 1
#else
#define FLYWHEEL_HAS_SDPA 0
#endif

namespace flywheel::compat {

// Fused attention on LibTorch >= 2.0 (flash / memory-efficient kernels on GPU), a plain
// float32-softmax path on 1.13. q: [B, H, T, D], k/v: [B, H, S, D] (KV heads already
// repeated), mask: [B, 1, T, S] bool (true = attend) or undefined; is_causal is only used
// when mask is undefined and T == S.
torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, const torch::Tensor& mask,
                                           bool is_causal);

}  // namespace flywheel::compat
