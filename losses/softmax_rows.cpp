#include "losses/softmax_rows.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "losses/logprobs.h"
#include "trainer/core/simd.h"

namespace flywheel::losses {
namespace {

// Rows per block of the LibTorch path: bounds its logps_dtype copies to [1024, V].
constexpr int64_t kBlockRows = 1024;

bool kernel_applies(const torch::Tensor& logits) {
  return logits.device().is_cpu() && logits.scalar_type() == torch::kFloat32 && simd::available();
}

void check_targets(const torch::Tensor& targets, int64_t N, int64_t V) {
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == N, "targets must be [", N, "], got ",
              targets.sizes());
  if (N == 0) return;
  const auto [low, high] = torch::aminmax(targets);
  TORCH_CHECK(low.item<int64_t>() >= 0 && high.item<int64_t>() < V, "targets must lie in [0, ", V,
              "), got ", low.item<int64_t>(), " .. ", high.item<int64_t>());
}

FLYWHEEL_SIMD_BEGIN
using namespace simd;

// Rows [begin, end) of x [N, V]: picked as the sampler computes it, (x_t - max) - log_sum.
void picked_rows(const float* x, int64_t V, const int64_t* targets, int64_t begin, int64_t end,
                 float* picked, float* lse) {
  for (int64_t r = begin; r < end; ++r) {
    const float* row = x + r * V;
    const auto parts = log_softmax_parts(row, V);
    picked[r] = (row[targets[r]] - parts.max) - parts.log_sum;
    lse[r] = parts.max + parts.log_sum;
  }
}

// d[r] = grad[r] * (onehot(t_r) - exp(x[r] - lse[r])) for rows [begin, end).
void gradient_rows(const float* x, int64_t V, const float* lse, const int64_t* targets,
                   const float* grad, int64_t begin, int64_t end, float* d) {
  const int64_t whole = V / kLanes * kLanes;
  for (int64_t r = begin; r < end; ++r) {
    const float* row = x + r * V;
    float* out = d + r * V;
    const float g = grad[r], shift = lse[r];
    const v16 scale = splat(-g), offset = splat(shift);
    for (int64_t j = 0; j < whole; j += kLanes)
      store(out + j, exp16(load(row + j) - offset) * scale);
    for (int64_t j = whole; j < V; ++j)
      out[j] = -g * std::exp(row[j] - shift);
    out[targets[r]] += g;
  }
}

FLYWHEEL_SIMD_END

}  // namespace

RowLogps row_logps(const torch::Tensor& logits, const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2, "logits must be [N, V], got ", logits.sizes());
  const int64_t N = logits.size(0), V = logits.size(1);
  check_targets(targets, N, V);
  const auto dtype = logps_dtype(logits.scalar_type());
  RowLogps out{torch::empty({N}, logits.options().dtype(dtype)),
               torch::empty({N}, logits.options().dtype(dtype))};
  if (kernel_applies(logits)) {
    const auto x = logits.contiguous();
    const auto t = targets.contiguous();
    const float* xp = x.data_ptr<float>();
    const int64_t* tp = t.data_ptr<int64_t>();
    float* picked = out.picked.data_ptr<float>();
    float* lse = out.lse.data_ptr<float>();
    at::parallel_for(0, N, simd::rows_grain(V), [&](int64_t begin, int64_t end) {
      picked_rows(xp, V, tp, begin, end, picked, lse);
    });
    return out;
  }
  for (int64_t at = 0; at < N; at += kBlockRows) {
    const auto n = std::min(kBlockRows, N - at);
    const auto x = logits.narrow(0, at, n).to(dtype);
    const auto lse = torch::logsumexp(x, 1);
    out.lse.narrow(0, at, n).copy_(lse);
    out.picked.narrow(0, at, n).copy_(
        x.gather(1, targets.narrow(0, at, n).unsqueeze(1)).squeeze(1) - lse);
  }
  return out;
}

torch::Tensor row_logps_backward(const torch::Tensor& logits, const torch::Tensor& lse,
                                 const torch::Tensor& targets, const torch::Tensor& grad) {
  const int64_t N = logits.size(0), V = logits.size(1);
  const auto dtype = logps_dtype(logits.scalar_type());
  auto d = torch::empty_like(logits, torch::MemoryFormat::Contiguous);
  if (kernel_applies(logits)) {
    const auto x = logits.contiguous();
    const auto t = targets.contiguous();
    const auto s = lse.to(torch::kFloat32).contiguous();
    const auto g = grad.to(torch::kFloat32).contiguous();
    const float* xp = x.data_ptr<float>();
    const float* sp = s.data_ptr<float>();
    const int64_t* tp = t.data_ptr<int64_t>();
    const float* gp = g.data_ptr<float>();
    float* dp = d.data_ptr<float>();
    at::parallel_for(0, N, simd::rows_grain(V), [&](int64_t begin, int64_t end) {
      gradient_rows(xp, V, sp, tp, gp, begin, end, dp);
    });
    return d;
  }
  for (int64_t at = 0; at < N; at += kBlockRows) {
    const auto n = std::min(kBlockRows, N - at);
    const auto g = grad.narrow(0, at, n).to(dtype).unsqueeze(1);  // [n, 1]
    auto block = logits.narrow(0, at, n)
                     .to(dtype)
                     .sub(lse.narrow(0, at, n).to(dtype).unsqueeze(1))
                     .exp_()
                     .mul_(g)
                     .neg_();
    block.scatter_add_(1, targets.narrow(0, at, n).unsqueeze(1), g);
    d.narrow(0, at, n).copy_(block);
  }
  return d;
}

}  // namespace flywheel::losses
