#include "losses/logprobs.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "losses/softmax_rows.h"
#include "trainer/tensor/matmul.h"

namespace flywheel::losses {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Rows [begin, begin + n) of hidden through the head: logits [n, V] in hidden's dtype.
torch::Tensor chunk_logits(const torch::Tensor& hidden, const torch::Tensor& weight, int64_t begin,
                           int64_t n) {
  return matmul_cpu(hidden.narrow(0, begin, n), weight.t());
}

// chunk > 0: `chunk` rows of logits at a time, formed again in backward. chunk == 0: all rows'
// logits at once, kept for backward (what plain autograd would keep, without the [N, V]
// temporaries of its log-softmax, gather and their backward).
class LinearLogps : public torch::autograd::Function<LinearLogps> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight, const torch::Tensor& targets,
                               int64_t chunk) {
    const auto N = hidden.size(0);
    const auto dtype = logps_dtype(hidden.scalar_type());
    auto picked = torch::empty({N}, hidden.options().dtype(dtype));
    auto lse = torch::empty({N}, hidden.options().dtype(dtype));
    torch::Tensor kept;
    const auto step = chunk > 0 ? chunk : std::max<int64_t>(N, 1);
    for (int64_t at = 0; at < N; at += step) {
      const auto n = std::min(step, N - at);
      const auto logits = chunk_logits(hidden, weight, at, n);  // [n, V]
      const auto rows = row_logps(logits, targets.narrow(0, at, n));
      picked.narrow(0, at, n).copy_(rows.picked);
      lse.narrow(0, at, n).copy_(rows.lse);
      if (chunk <= 0) kept = logits;
    }
    ctx->save_for_backward({hidden, weight, targets, lse, kept});
    ctx->saved_data["chunk"] = chunk;
    return picked;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &hidden = saved[0], &weight = saved[1], &targets = saved[2], &lse = saved[3];
    const auto chunk = ctx->saved_data["chunk"].toInt();
    const auto& grad = grad_outputs[0];  // [N]
    const auto N = hidden.size(0);
    if (chunk <= 0) {
      const auto& logits = saved[4];
      if (!logits.defined()) {  // no rows
        return {torch::zeros_like(hidden), torch::zeros_like(weight), torch::Tensor(),
                torch::Tensor()};
      }
      const auto d = row_logps_backward(logits, lse, targets, grad);  // [N, V]
      return {matmul_cpu(d, weight), matmul_cpu(d.t(), hidden), torch::Tensor(), torch::Tensor()};
    }
    auto grad_hidden = torch::empty_like(hidden);
    auto grad_weight = torch::zeros(weight.sizes(), grad.options());
    for (int64_t at = 0; at < N; at += chunk) {
      const auto n = std::min(chunk, N - at);
      const auto d = row_logps_backward(chunk_logits(hidden, weight, at, n), lse.narrow(0, at, n),
                                        targets.narrow(0, at, n), grad.narrow(0, at, n));
      grad_hidden.narrow(0, at, n).copy_(matmul_cpu(d, weight));
      grad_weight.add_(matmul_cpu(d.t(), hidden.narrow(0, at, n)));
    }
    return {grad_hidden, grad_weight.to(weight.scalar_type()), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::ScalarType logps_dtype(torch::ScalarType logits_dtype) {
  return logits_dtype == torch::kDouble ? torch::kDouble : torch::kFloat;
}

torch::Tensor gather_logps(const torch::Tensor& logits, const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 3, "logits must be [B, T, V], got ", logits.sizes());
  TORCH_CHECK(targets.sizes() == logits.sizes().slice(0, 2),
              "targets must be [B, T] = ", logits.sizes().slice(0, 2), ", got ", targets.sizes());
  const auto dtype = logps_dtype(logits.scalar_type());
  const auto score = [dtype](const torch::Tensor& l, const torch::Tensor& t) {
    const auto picked = l.gather(-1, t.unsqueeze(-1)).squeeze(-1).to(dtype);
    return picked - torch::logsumexp(l.to(dtype), -1);
  };
  if (logits.scalar_type() == dtype) return score(logits, targets);
  std::vector<torch::Tensor> rows;
  rows.reserve(logits.size(0));
  for (int64_t b = 0; b < logits.size(0); ++b)
    rows.push_back(score(logits[b], targets[b]));
  return torch::stack(rows);
}

SequenceLogps sequence_logps(const torch::Tensor& logits, const torch::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 2, "labels must be [B, T], got ", labels.sizes());
  const auto shifted_labels = labels.slice(1, 1);       // [B, T-1]
  const auto shifted_logits = logits.slice(1, 0, -1);   // [B, T-1, V]
  const auto trained = shifted_labels != kIgnoreIndex;  // [B, T-1]
  // Ignored positions gather index 0 (any valid index) and are zeroed afterwards.
  const auto targets = shifted_labels.masked_fill(trained.logical_not(), 0);
  const auto token_logps =
      gather_logps(shifted_logits, targets).masked_fill(trained.logical_not(), 0);
  SequenceLogps out;
  out.token_logps = token_logps;
  out.sum = token_logps.sum(1);
  out.count = trained.sum(1);
  out.mean = out.sum / out.count.clamp_min(1).to(out.sum.scalar_type());
  return out;
}

torch::Tensor linear_gather_logps(const torch::Tensor& hidden, const torch::Tensor& weight,
                                  const torch::Tensor& targets, int64_t chunk) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
              "hidden must be [N, C] and weight [V, C], got ", hidden.sizes(), " and ",
              weight.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0),
              "targets must be [N = ", hidden.size(0), "], got ", targets.sizes());
  TORCH_CHECK(chunk >= 0, "chunk must be 0 (all rows at once) or positive");
  return LinearLogps::apply(hidden.contiguous(), weight, targets.contiguous(), chunk);
}

SequenceLogps sequence_logps(const torch::Tensor& hidden, const torch::Tensor& head_weight,
                             const torch::Tensor& labels, int64_t chunk) {
  TORCH_CHECK(hidden.dim() == 3 && labels.sizes() == hidden.sizes().slice(0, 2),
              "hidden must be [B, T, C] with labels [B, T], got ", hidden.sizes(), " and ",
              labels.sizes());
  const auto B = labels.size(0), T = labels.size(1);
  const auto shifted_labels = labels.slice(1, 1);       // [B, T-1]
  const auto trained = shifted_labels != kIgnoreIndex;  // [B, T-1]
  // Only the scored positions go through the head: prompts and padding cost nothing.
  const auto where = trained.reshape({-1}).nonzero().squeeze(1);  // [M] into B * (T-1)
  const auto rows = hidden.slice(1, 0, -1).reshape({B * (T - 1), -1}).index_select(0, where);
  const auto picked =
      linear_gather_logps(rows, head_weight, shifted_labels.reshape({-1}).index_select(0, where),
                          std::max<int64_t>(chunk, 0));  // [M]
  SequenceLogps out;
  out.token_logps =
      torch::zeros({B * (T - 1)}, picked.options()).index_put({where}, picked).view({B, T - 1});
  out.sum = out.token_logps.sum(1);
  out.count = trained.sum(1);
  out.mean = out.sum / out.count.clamp_min(1).to(out.sum.scalar_type());
  return out;
}

}  // namespace flywheel::losses
