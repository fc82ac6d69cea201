// Fused float32 CPU kernels for generation: each does in one pass over memory what the
// differentiable composition does in several ATen calls, and at decoding's small shapes the
// calls, not the arithmetic, are the cost (bench/README.md, "Rollout"). The modules of
// trainer/model/llama.h use them when fused_cpu_applies(), i.e. under inference mode, which
// the rollout engine sets; forwards with autograd on an AVX-512 CPU take the same kernels as
// autograd functions (fused_cpu_autograd.h), so the engine and the trainer compute a float32
// model alike. Each kernel does the float32 operations of the composition it replaces, in the
// same order, except that RMSNorm sums its squares in double and takes 1 / sqrt where ATen has
// its own rsqrt, and SiLU's exponential is trainer/core/simd.h's: results agree to float32
// rounding (an ulp or so), not bit for bit.
#pragma once

#include <torch/torch.h>

namespace flywheel {

// True when `x` is a float32 CPU tensor and inference mode is on.
bool fused_cpu_applies(const torch::Tensor& x);

// weight * (x * rsqrt(mean(x^2) + eps)) over the last dimension: x [..., C], weight [C].
// inv_rms, when given, receives each row's rsqrt factor [rows] (what backward needs).
torch::Tensor rms_norm_cpu(const torch::Tensor& x, const torch::Tensor& weight, double eps,
                           torch::Tensor* inv_rms = nullptr);

// Rotary embedding in place on x [B, T, H, D] (contiguous): x * cos + rotate_half(x) * sin,
// cos/sin [B, T, D] (float32). transpose applies the transposed rotation instead (backward's:
// the gradient of x from the gradient of the output).
void rope_cpu_(torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
               bool transpose = false);

// silu(gate) * up, elementwise (same shapes, contiguous).
torch::Tensor silu_mul_cpu(const torch::Tensor& gate, const torch::Tensor& up);

}  // namespace flywheel
