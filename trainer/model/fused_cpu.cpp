#include "trainer/model/fused_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "trainer/core/simd.h"

namespace flywheel {
namespace {

FLYWHEEL_SIMD_BEGIN

// o[i] = g[i] / (1 + e^-g[i]) * u[i] over [begin, end), sixteen at a time.
void silu_mul_vectors(const float* g, const float* u, int64_t begin, int64_t end, float* o) {
  int64_t i = begin;
  for (; i + simd::kLanes <= end; i += simd::kLanes) {
    const simd::v16 x = simd::load(g + i);
    simd::store(o + i, x / (1.0f + simd::exp16(-x)) * simd::load(u + i));
  }
  for (; i < end; ++i)
    o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

FLYWHEEL_SIMD_END

}  // namespace

bool fused_cpu_applies(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
         c10::InferenceMode::is_enabled();
}

torch::Tensor rms_norm_cpu(const torch::Tensor& x, const torch::Tensor& weight, double eps,
                           torch::Tensor* inv_rms) {
  const auto in = x.contiguous();
  const auto w = weight.contiguous();
  const int64_t C = in.size(-1), rows = in.numel() / C;
  auto out = torch::empty_like(in);
  const float* src = in.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  float* inv = nullptr;
  if (inv_rms != nullptr) {
    *inv_rms = torch::empty({rows}, in.options());
    inv = inv_rms->data_ptr<float>();
  }
  at::parallel_for(0, rows, simd::rows_grain(C), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* a = src + r * C;
      float* o = dst + r * C;
      // The mean of squares in double: closer to exact than any float32 summation order.
      double sum = 0;
      for (int64_t c = 0; c < C; ++c)
        sum += static_cast<double>(a[c]) * a[c];
      const float mean = static_cast<float>(sum / static_cast<double>(C));
      const float scale = 1.0f / std::sqrt(mean + static_cast<float>(eps));
      if (inv != nullptr) inv[r] = scale;
      for (int64_t c = 0; c < C; ++c)
        o[c] = wp[c] * (a[c] * scale);
    }
  });
  return out;
}

void rope_cpu_(torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
               bool transpose) {
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), "rope_cpu_: x must be [B, T, H, D] contiguous");
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), D = x.size(3), half = D / 2;
  const auto c = cos.contiguous(), s = sin.contiguous();
  TORCH_CHECK(c.size(0) == B && c.size(1) == T && c.size(2) == D, "rope_cpu_: cos must be [", B,
              ", ", T, ", ", D, "], got ", c.sizes());
  float* xp = x.data_ptr<float>();
  const float* cp = c.data_ptr<float>();
  const float* sp = s.data_ptr<float>();
  at::parallel_for(0, B * T, simd::rows_grain(H * D), [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const float* cb = cp + bt * D;
      const float* sb = sp + bt * D;
      for (int64_t h = 0; h < H; ++h) {
        float* v = xp + (bt * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          const float x1 = v[i], x2 = v[i + half];
          if (transpose) {
            v[i] = x1 * cb[i] + x2 * sb[i + half];
            v[i + half] = x2 * cb[i + half] - x1 * sb[i];
          } else {
            // rotate_half(x) = [-x2, x1]
            v[i] = x1 * cb[i] + (-x2) * sb[i];
            v[i + half] = x2 * cb[i + half] + x1 * sb[i + half];
          }
        }
      }
    }
  });
}

torch::Tensor silu_mul_cpu(const torch::Tensor& gate, const torch::Tensor& up) {
  const auto g = gate.contiguous(), u = up.contiguous();
  auto out = torch::empty_like(g);
  const float* gp = g.data_ptr<float>();
  const float* upp = u.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const bool vectors = simd::available();
  at::parallel_for(0, g.numel(), simd::kGrain, [&](int64_t begin, int64_t end) {
    if (vectors) return silu_mul_vectors(gp, upp, begin, end, o);
    for (int64_t i = begin; i < end; ++i)
      o[i] = gp[i] / (1.0f + std::exp(-gp[i])) * upp[i];
  });
  return out;
}

}  // namespace flywheel
