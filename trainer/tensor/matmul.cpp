#include "trainer/tensor/matmul.h"

#include <ATen/Context.h>
#include <dlfcn.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

namespace flywheel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// at::native::mkldnn_matmul(mat1, mat2, result, beta, alpha): result = alpha mat1 mat2 (+ beta
// result), operands of any strides.
using OnednnMatmul = void (*)(const at::Tensor&, const at::Tensor&, const at::Tensor&, float,
                              float);

OnednnMatmul onednn() {
  static const auto fn = reinterpret_cast<OnednnMatmul>(
      dlsym(RTLD_DEFAULT, "_ZN2at6native13mkldnn_matmulERKNS_6TensorES3_S3_ff"));
  return fn != nullptr && at::globalContext().userEnabledMkldnn() ? fn : nullptr;
}

bool float_cpu(const torch::Tensor& t) {
  return t.dim() == 2 && t.device().is_cpu() && t.scalar_type() == torch::kFloat32;
}

// Narrow products stay with MKL: with an inner or output width under 128 (stories260K's 64 to
// 172) oneDNN's per-call set-up outweighs its faster kernel (whole GRPO runs 7% slower), while
// llama-10m's 256 to 8192 run 6% faster end to end.
constexpr int64_t kMinWidth = 128;

// One unit stride (row- or column-major, possibly a slice): what oneDNN reads in place.
torch::Tensor unit_strided(const torch::Tensor& t) {
  return t.stride(1) == 1 || t.stride(0) == 1 ? t : t.contiguous();
}

class LinearFunction : public torch::autograd::Function<LinearFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight) {
    const auto rows = x.reshape({-1, x.size(-1)});
    const auto y = matmul_cpu(rows, weight.t());
    ctx->save_for_backward({rows, weight});
    auto sizes = x.sizes().vec();
    sizes.back() = weight.size(0);
    return y.view(sizes);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &rows = saved[0], &weight = saved[1];
    const auto dy = grad_outputs[0].reshape({-1, weight.size(0)});  // [N, out]
    auto sizes = grad_outputs[0].sizes().vec();
    sizes.back() = weight.size(1);
    // Frozen weights (a reference model, a value head's trunk) skip their product.
    const auto dx = ctx->needs_input_grad(0) ? matmul_cpu(dy, weight).view(sizes) : torch::Tensor();
    const auto dw = ctx->needs_input_grad(1) ? matmul_cpu(dy.t(), rows) : torch::Tensor();
    return {dx, dw};
  }
};

}  // namespace

bool onednn_matmul_available() {
  return onednn() != nullptr;
}

torch::Tensor matmul_cpu(const torch::Tensor& a, const torch::Tensor& b) {
  const auto fn = onednn();
  if (fn == nullptr || !float_cpu(a) || !float_cpu(b) || a.size(0) == 0 ||
      std::min(a.size(1), b.size(1)) < kMinWidth) {
    return torch::mm(a, b);
  }
  TORCH_CHECK(a.size(1) == b.size(0), "matmul_cpu: ", a.sizes(), " @ ", b.sizes());
  auto out = torch::empty({a.size(0), b.size(1)}, a.options());
  fn(unit_strided(a), unit_strided(b), out, 0.0f, 1.0f);
  return out;
}

torch::Tensor linear_cpu(const torch::Tensor& x, const torch::Tensor& weight,
                         const torch::Tensor& bias) {
  if (onednn() == nullptr || !x.device().is_cpu() || x.scalar_type() != torch::kFloat32 ||
      weight.scalar_type() != torch::kFloat32) {
    return torch::linear(x, weight, bias);
  }
  // A bias (Qwen's q/k/v) is added outside: autograd takes no undefined input.
  const auto y = LinearFunction::apply(x, weight);
  return bias.defined() ? y + bias : y;
}

}  // namespace flywheel
