// Float32 matrix products on the CPU through oneDNN where the LibTorch build carries it.
//
// LibTorch sends exact float32 products to MKL, whose kernels on AMD CPUs are its AVX2 ones
// (AMD EPYC Zen 4 here: 150-200 GFLOP/s on 2 cores); oneDNN's matmul picks AVX-512 by what
// the CPU reports and runs the model's shapes 10-20% faster with the same float32 arithmetic
// (bench/README.md, "Training kernels"). LibTorch exports that function but ships no header
// for it, so it is looked up by name at run time; where it is missing (another LibTorch
// build) or oneDNN is switched off, the products are ATen's own.
#pragma once

#include <torch/torch.h>

namespace flywheel {

// a [M, K] @ b [K, N] -> [M, N], contiguous. Any strides with one unit stride per operand
// (a transposed view costs nothing).
torch::Tensor matmul_cpu(const torch::Tensor& a, const torch::Tensor& b);

// Whether matmul_cpu reaches oneDNN (float32 CPU operands): for the tests and the benchmark.
bool onednn_matmul_available();

// x [..., in] W^T + b with W [out, in], b [out] or undefined: matmul_cpu forward and backward
// for float32 CPU tensors (differentiable in x, W and b); torch::linear otherwise.
torch::Tensor linear_cpu(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias);

}  // namespace flywheel
