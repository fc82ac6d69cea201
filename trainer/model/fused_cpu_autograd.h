// Training's side of fused_cpu.h: RMSNorm, the rotary embedding and SwiGLU's silu(gate) * up as
// autograd functions on float32 CPU tensors. Forward is fused_cpu.h's kernel; backward is one
// pass of its own that reads only what forward kept (RMSNorm: its input and each row's inverse
// RMS; rotary: nothing but cos/sin; SwiGLU: gate and up), where the composed graph keeps and
// walks several [tokens, features] intermediates per operation. The modules of
// trainer/model/llama.h use them when fused_cpu_autograd_applies(); values and gradients equal
// the composed path's to float32 rounding (tests/fused_cpu_test.cpp).
#pragma once

#include <torch/torch.h>

namespace flywheel {

// True when `x` is a float32 CPU tensor, inference mode is off, and the CPU runs the
// AVX-512 kernels (trainer/core/simd.h).
bool fused_cpu_autograd_applies(const torch::Tensor& x);

// rms_norm_cpu, differentiable in x and weight.
torch::Tensor rms_norm_autograd_cpu(const torch::Tensor& x, const torch::Tensor& weight,
                                    double eps);

// x * cos + rotate_half(x) * sin for x [B, T, H, D], cos/sin [B, T, D]; differentiable in x.
torch::Tensor rope_autograd_cpu(const torch::Tensor& x, const torch::Tensor& cos,
                                const torch::Tensor& sin);

// silu(gate) * up, differentiable in both (same shapes).
torch::Tensor silu_mul_autograd_cpu(const torch::Tensor& gate, const torch::Tensor& up);

}  // namespace flywheel
