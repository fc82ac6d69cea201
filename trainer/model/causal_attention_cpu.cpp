#include "trainer/model/causal_attention_cpu.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>
#include <vector>

#include "trainer/core/simd.h"

namespace flywheel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kMaxHeadDim = 256;
// Rows up to 512 positions: RL's and DPO's responses, where ATen's flash kernel was measured
// 3-4x slower (62 positions, head_dim 8 and 32). Longer rows stay with ATen's blocked kernel,
// this one's per-query loops having not been measured against it there.
constexpr int64_t kMaxLength = 512;

struct Shape {
  int64_t R = 0, H = 0, K = 0, T = 0, D = 0;
  int64_t Tp = 0;  // T rounded up to whole vectors
  float scale = 0;
};

// One task's scratch: its KV head's keys and values transposed ([D, Tp], feature-major, so
// sixteen keys' scores come out of D multiply-adds), a query's scores and probabilities, and
// backward's key and value gradients summed over the group's query heads.
struct Scratch {
  std::vector<float> kt, vt, p, ds, dk, dv;
  void size_for(const Shape& s, bool backward) {
    const auto n = static_cast<size_t>(s.D * s.Tp);
    kt.assign(n, 0.0f);
    p.resize(static_cast<size_t>(s.Tp));
    if (!backward) return;
    vt.assign(n, 0.0f);
    ds.resize(static_cast<size_t>(s.Tp));
    dk.assign(static_cast<size_t>(s.T * s.D), 0.0f);
    dv.assign(static_cast<size_t>(s.T * s.D), 0.0f);
  }
};

FLYWHEEL_SIMD_BEGIN
using namespace simd;

// x [T, D] into xt [D, Tp].
void transpose_into(const float* x, const Shape& s, float* xt) {
  for (int64_t t = 0; t < s.T; ++t) {
    for (int64_t d = 0; d < s.D; ++d)
      xt[d * s.Tp + t] = x[t * s.D + d];
  }
}

// Scaled scores of query q [D] against keys [0, n) into p[0, Tp): whole vectors, so lanes past
// n hold scores of later keys or of zero padding, which the callers mask.
void scores(const float* q, const float* kt, const Shape& s, int64_t n, float* p) {
  for (int64_t c = 0; c < n; c += kLanes) {
    v16 acc{};
    for (int64_t d = 0; d < s.D; ++d)
      acc += q[d] * load(kt + d * s.Tp + c);
    store(p + c, acc * s.scale);
  }
}

// p[0, n) = exp(p - shift), lanes past n zeroed; returns their sum.
float exponentiate(float* p, int64_t n, float shift) {
  const v16 lane = lane_numbers();
  v16 sum{};
  for (int64_t c = 0; c < n; c += kLanes) {
    const v16 e = exp16(load(p + c) - shift);
    const v16 kept = lane < static_cast<float>(n - c) ? e : v16{};
    store(p + c, kept);
    sum += kept;
  }
  return lanes_sum(sum);
}

float masked_max(const float* p, int64_t n) {
  const v16 lane = lane_numbers();
  v16 top = splat(-std::numeric_limits<float>::infinity());
  for (int64_t c = 0; c < n; c += kLanes) {
    const v16 v = lane < static_cast<float>(n - c) ? load(p + c) : top;
    top = v > top ? v : top;
  }
  return lanes_max(top);
}

// y[0, D) = a * sum_j w[j] x[j, :] over j in [0, n), x [n, D] row-major.
void weighted_rows(const float* w, const float* x, int64_t n, int64_t D, float a, float* y) {
  for (int64_t d = 0; d < D; d += 8) {
    v8 acc{};
    for (int64_t j = 0; j < n; ++j)
      acc += w[j] * load<v8>(x + j * D + d);
    store(y + d, acc * a);
  }
}

// Forward of KV head g of row r: its query heads' outputs and log-sum-exps.
void forward_task(const float* q, const float* k, const float* v, const Shape& s, int64_t r,
                  int64_t g, Scratch& w, float* out, float* lse) {
  const int64_t G = s.H / s.K;
  transpose_into(k + (r * s.K + g) * s.T * s.D, s, w.kt.data());
  const float* vg = v + (r * s.K + g) * s.T * s.D;
  for (int64_t h = g * G; h < (g + 1) * G; ++h) {
    const int64_t head = r * s.H + h;
    for (int64_t i = 0; i < s.T; ++i) {
      const float* qi = q + (head * s.T + i) * s.D;
      const int64_t n = i + 1;
      scores(qi, w.kt.data(), s, n, w.p.data());
      const float m = masked_max(w.p.data(), n);
      const float sum = exponentiate(w.p.data(), n, m);
      weighted_rows(w.p.data(), vg, n, s.D, 1.0f / sum, out + (head * s.T + i) * s.D);
      lse[head * s.T + i] = m + std::log(sum);
    }
  }
}

// Backward of KV head g of row r, with P = exp(S - lse) recomputed:
//   dV += P^T dO,  dS = P * (dO V^T - rowsum(dO * O)),  dQ = scale dS K,  dK += scale dS^T Q.
void backward_task(const float* q, const float* k, const float* v, const float* out,
                   const float* lse, const float* dout, const Shape& s, int64_t r, int64_t g,
                   Scratch& w, float* dq, float* dk, float* dv) {
  const int64_t G = s.H / s.K, D = s.D;
  const float* kg = k + (r * s.K + g) * s.T * D;
  transpose_into(kg, s, w.kt.data());
  transpose_into(v + (r * s.K + g) * s.T * D, s, w.vt.data());
  std::fill(w.dk.begin(), w.dk.end(), 0.0f);
  std::fill(w.dv.begin(), w.dv.end(), 0.0f);
  const v16 lane = lane_numbers();
  for (int64_t h = g * G; h < (g + 1) * G; ++h) {
    const int64_t head = r * s.H + h;
    for (int64_t i = 0; i < s.T; ++i) {
      const int64_t at = (head * s.T + i) * D, n = i + 1;
      const float *qi = q + at, *oi = out + at, *gi = dout + at;
      float delta = 0;
      for (int64_t d = 0; d < D; ++d)
        delta += gi[d] * oi[d];
      scores(qi, w.kt.data(), s, n, w.p.data());
      exponentiate(w.p.data(), n, lse[head * s.T + i]);
      // dS over whole vectors; p is zero past n, so is dS.
      for (int64_t c = 0; c < n; c += kLanes) {
        v16 dp{};
        for (int64_t d = 0; d < D; ++d)
          dp += gi[d] * load(w.vt.data() + d * s.Tp + c);
        const v16 ds = load(w.p.data() + c) * (dp - delta);
        store(w.ds.data() + c, lane < static_cast<float>(n - c) ? ds * s.scale : v16{});
      }
      weighted_rows(w.ds.data(), kg, n, D, 1.0f, dq + at);
      for (int64_t j = 0; j < n; ++j) {
        const float a = w.ds[static_cast<size_t>(j)], b = w.p[static_cast<size_t>(j)];
        float* dkj = w.dk.data() + j * D;
        float* dvj = w.dv.data() + j * D;
        for (int64_t d = 0; d < D; d += 8) {
          store(dkj + d, load<v8>(dkj + d) + a * load<v8>(qi + d));
          store(dvj + d, load<v8>(dvj + d) + b * load<v8>(gi + d));
        }
      }
    }
  }
  const int64_t base = (r * s.K + g) * s.T * D;
  std::copy(w.dk.begin(), w.dk.end(), dk + base);
  std::copy(w.dv.begin(), w.dv.end(), dv + base);
}

FLYWHEEL_SIMD_END

Shape shape_of(const torch::Tensor& q, const torch::Tensor& k) {
  Shape s;
  s.R = q.size(0);
  s.H = q.size(1);
  s.K = k.size(1);
  s.T = q.size(2);
  s.D = q.size(3);
  s.Tp = (s.T + simd::kLanes - 1) / simd::kLanes * simd::kLanes;
  s.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.D)));
  return s;
}

// Each task (row, KV head) on one thread; the scratch lives with the thread.
template <typename Task>
void for_each_task(const Shape& s, bool backward, Task task) {
  at::parallel_for(0, s.R * s.K, 1, [&](int64_t begin, int64_t end) {
    thread_local Scratch w;
    w.size_for(s, backward);
    for (int64_t t = begin; t < end; ++t)
      task(t / s.K, t % s.K, w);
  });
}

class CausalAttention : public torch::autograd::Function<CausalAttention> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in,
                               const torch::Tensor& k_in, const torch::Tensor& v_in) {
    const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const auto s = shape_of(q, k);
    auto out = torch::empty_like(q);
    auto lse = torch::empty({s.R, s.H, s.T}, q.options());
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float *op = out.data_ptr<float>(), *lp = lse.data_ptr<float>();
    for_each_task(s, false, [&](int64_t r, int64_t g, Scratch& w) {
      forward_task(qp, kp, vp, s, r, g, w, op, lp);
    });
    ctx->save_for_backward({q, k, v, out, lse});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const auto dout = grad_outputs[0].contiguous();
    const auto s = shape_of(q, k);
    auto dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    const float *op = out.data_ptr<float>(), *lp = lse.data_ptr<float>();
    const float* gp = dout.data_ptr<float>();
    float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
    for_each_task(s, true, [&](int64_t r, int64_t g, Scratch& w) {
      backward_task(qp, kp, vp, op, lp, gp, s, r, g, w, dqp, dkp, dvp);
    });
    return {dq, dk, dv};
  }
};

}  // namespace

bool causal_attention_cpu_applies(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v) {
  const auto plain = [](const torch::Tensor& t) {
    return t.dim() == 4 && t.device().is_cpu() && t.scalar_type() == torch::kFloat32;
  };
  if (!plain(q) || !plain(k) || !plain(v) || !simd::available()) return false;
  const auto H = q.size(1), K = k.size(1), T = q.size(2), D = q.size(3);
  return K > 0 && H % K == 0 && k.sizes() == v.sizes() && k.size(0) == q.size(0) &&
         k.size(2) == T && k.size(3) == D && D % 8 == 0 && D <= kMaxHeadDim && T <= kMaxLength;
}

torch::Tensor causal_attention_cpu(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v) {
  TORCH_CHECK(causal_attention_cpu_applies(q, k, v), "causal_attention_cpu: unsupported q ",
              q.sizes(), ", k ", k.sizes(), ", v ", v.sizes());
  return CausalAttention::apply(q, k, v);
}

}  // namespace flywheel
