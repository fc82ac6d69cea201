#include "trainer/model/fused_cpu_autograd.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "trainer/core/simd.h"
#include "trainer/model/fused_cpu.h"

namespace flywheel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

FLYWHEEL_SIMD_BEGIN
using namespace simd;

// Rows [begin, end) of RMSNorm's backward, y = w * x * r with r = 1 / sqrt(mean(x^2) + eps):
//   dx = r * (dy * w) - x * r^3 / C * sum(dy * w * x),   dw += dy * x * r (into dw_part).
void rms_norm_backward_rows(const float* x, const float* w, const float* inv, const float* dy,
                            int64_t C, int64_t begin, int64_t end, float* dx, float* dw_part) {
  const int64_t whole = C / kLanes * kLanes;
  for (int64_t r = begin; r < end; ++r) {
    const float* xr = x + r * C;
    const float* gr = dy + r * C;
    float* out = dx + r * C;
    const float rr = inv[r];
    v16 dots{};
    for (int64_t c = 0; c < whole; c += kLanes)
      dots += load(gr + c) * load(w + c) * load(xr + c);
    float dot = lanes_sum(dots);
    for (int64_t c = whole; c < C; ++c)
      dot += gr[c] * w[c] * xr[c];
    const float k = rr * rr * rr * dot / static_cast<float>(C);
    for (int64_t c = 0; c < whole; c += kLanes) {
      const v16 xv = load(xr + c), gv = load(gr + c);
      store(out + c, rr * (gv * load(w + c)) - xv * k);
      store(dw_part + c, load(dw_part + c) + gv * xv * rr);
    }
    for (int64_t c = whole; c < C; ++c) {
      out[c] = rr * (gr[c] * w[c]) - xr[c] * k;
      dw_part[c] += gr[c] * xr[c] * rr;
    }
  }
}

// SwiGLU's backward over [begin, end), s = sigmoid(g):
//   dup = dy * g * s,   dgate = dy * up * s * (1 + g * (1 - s)).
void silu_mul_backward_range(const float* g, const float* u, const float* dy, int64_t begin,
                             int64_t end, float* dg, float* du) {
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    const v16 gv = load(g + i), gy = load(dy + i);
    const v16 s = 1.0f / (1.0f + exp16(-gv));
    store(du + i, gy * gv * s);
    store(dg + i, gy * load(u + i) * s * (1.0f + gv * (1.0f - s)));
  }
  for (; i < end; ++i) {
    const float s = 1.0f / (1.0f + std::exp(-g[i]));
    du[i] = dy[i] * g[i] * s;
    dg[i] = dy[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

FLYWHEEL_SIMD_END

class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, double eps) {
    torch::Tensor inv;
    auto y = rms_norm_cpu(x, weight, eps, &inv);
    ctx->save_for_backward({x.contiguous(), weight.contiguous(), inv});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &inv = saved[2];
    const auto dy = grad_outputs[0].contiguous();
    const int64_t C = x.size(-1), rows = x.numel() / C;
    auto dx = torch::empty_like(x);
    // One weight-gradient row per thread, summed at the end: no thread waits on another.
    auto dw_parts = torch::zeros({at::get_num_threads(), C}, x.options());
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>();
    const float *ip = inv.data_ptr<float>(), *gp = dy.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    float* parts = dw_parts.data_ptr<float>();
    at::parallel_for(0, rows, simd::rows_grain(C), [&](int64_t begin, int64_t end) {
      rms_norm_backward_rows(xp, wp, ip, gp, C, begin, end, dxp, parts + at::get_thread_num() * C);
    });
    return {dx, dw_parts.sum(0), torch::Tensor()};
  }
};

class RopeFunction : public torch::autograd::Function<RopeFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin) {
    auto y = x.clone(torch::MemoryFormat::Contiguous);
    rope_cpu_(y, cos, sin);
    ctx->save_for_backward({cos, sin});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    auto dx = grad_outputs[0].clone(torch::MemoryFormat::Contiguous);
    rope_cpu_(dx, saved[0], saved[1], /*transpose=*/true);
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

class SiluMulFunction : public torch::autograd::Function<SiluMulFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate,
                               const torch::Tensor& up) {
    const auto g = gate.contiguous(), u = up.contiguous();
    ctx->save_for_backward({g, u});
    return silu_mul_cpu(g, u);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &g = saved[0], &u = saved[1];
    const auto dy = grad_outputs[0].contiguous();
    auto dg = torch::empty_like(g), du = torch::empty_like(u);
    const float *gp = g.data_ptr<float>(), *upp = u.data_ptr<float>(), *dyp = dy.data_ptr<float>();
    float *dgp = dg.data_ptr<float>(), *dup = du.data_ptr<float>();
    at::parallel_for(0, g.numel(), simd::kGrain, [&](int64_t begin, int64_t end) {
      silu_mul_backward_range(gp, upp, dyp, begin, end, dgp, dup);
    });
    return {dg, du};
  }
};

}  // namespace

bool fused_cpu_autograd_applies(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
         !c10::InferenceMode::is_enabled() && simd::available();
}

torch::Tensor rms_norm_autograd_cpu(const torch::Tensor& x, const torch::Tensor& weight,
                                    double eps) {
  return RmsNormFunction::apply(x, weight, eps);
}

torch::Tensor rope_autograd_cpu(const torch::Tensor& x, const torch::Tensor& cos,
                                const torch::Tensor& sin) {
  return RopeFunction::apply(x, cos, sin);
}

torch::Tensor silu_mul_autograd_cpu(const torch::Tensor& gate, const torch::Tensor& up) {
  return SiluMulFunction::apply(gate, up);
}

}  // namespace flywheel
