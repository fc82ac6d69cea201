#include "losses/ppo.h"

#include <cmath>
#include <vector>

#include "losses/masked.h"
#include "trainer/core/error.h"

namespace flywheel::losses {
namespace {

void check_in_unit_interval(double value, const char* name) {
  if (!(value >= 0 && value <= 1)) {
    throw UserError(c10::str("ppo: ", name, " must be in [0, 1], got ", value));
  }
}

void check_positive(double value, const char* name) {
  if (!(value > 0) || !std::isfinite(value)) {
    throw UserError(c10::str("ppo: ", name, " must be > 0, got ", value));
  }
}

void check_same_shape(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  TORCH_CHECK(a.dim() == 2 && a.sizes() == b.sizes(), what, " must be [B, T] like the mask ",
              b.sizes(), ", got ", a.sizes());
}

}  // namespace

void PpoOptions::validate() const {
  check_in_unit_interval(gamma, "gamma");
  check_in_unit_interval(lam, "lam");
  check_positive(cliprange, "cliprange");
  check_positive(cliprange_value, "cliprange_value");
}

Gae gae(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask,
        const PpoOptions& options) {
  options.validate();
  check_same_shape(rewards, mask, "rewards");
  check_same_shape(values, mask, "values");
  torch::NoGradGuard no_grad;
  const auto outside = mask.logical_not();
  const auto r = rewards.masked_fill(outside, 0);
  const auto v = values.to(r.scalar_type()).masked_fill(outside, 0);
  const int64_t steps = r.size(1);
  std::vector<torch::Tensor> advantages(steps);
  auto next_value = torch::zeros_like(v.select(1, 0));  // [B] V_{t+1}
  auto next_advantage = torch::zeros_like(next_value);  // [B] A_{t+1}
  for (int64_t t = steps - 1; t >= 0; --t) {
    const auto value = v.select(1, t);
    const auto delta = r.select(1, t) + options.gamma * next_value - value;
    next_advantage = delta + options.gamma * options.lam * next_advantage;
    advantages[t] = next_advantage;
    next_value = value;
  }
  Gae out;
  out.advantages = torch::stack(advantages, 1).masked_fill(outside, 0);
  out.returns = out.advantages + v;
  return out;
}

PpoPolicyLoss ppo_policy_loss(const torch::Tensor& logps, const torch::Tensor& old_logps,
                              const torch::Tensor& advantages, const torch::Tensor& mask,
                              const PpoOptions& options) {
  options.validate();
  check_same_shape(logps, mask, "logps");
  check_same_shape(old_logps, mask, "old_logps");
  check_same_shape(advantages, mask, "advantages");
  const double eps = options.cliprange;
  const auto ratio = torch::exp(logps - old_logps.detach());
  const auto a = advantages.detach();
  const auto per_token = torch::max(-a * ratio, -a * ratio.clamp(1 - eps, 1 + eps));
  PpoPolicyLoss out;
  out.loss = masked_mean(per_token, mask);
  out.clipfrac = masked_mean(((ratio.detach() - 1).abs() > eps).to(ratio.scalar_type()), mask);
  return out;
}

PpoValueLoss ppo_value_loss(const torch::Tensor& values, const torch::Tensor& old_values,
                            const torch::Tensor& returns, const torch::Tensor& mask,
                            const PpoOptions& options) {
  options.validate();
  check_same_shape(values, mask, "values");
  check_same_shape(old_values, mask, "old_values");
  check_same_shape(returns, mask, "returns");
  const double eps = options.cliprange_value;
  const auto old = old_values.detach();
  const auto target = returns.detach();
  const auto clipped = old + (values - old).clamp(-eps, eps);
  const auto unclipped_loss = (values - target).square();
  const auto clipped_loss = (clipped - target).square();
  PpoValueLoss out;
  out.loss = 0.5 * masked_mean(torch::max(unclipped_loss, clipped_loss), mask);
  out.clipfrac = masked_mean((clipped_loss > unclipped_loss).to(values.scalar_type()), mask);
  return out;
}

}  // namespace flywheel::losses
