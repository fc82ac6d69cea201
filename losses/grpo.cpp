#include "losses/grpo.h"

#include <cmath>

#include "losses/kl.h"
#include "losses/masked.h"
#include "trainer/core/error.h"

namespace flywheel::losses {
namespace {

void check_like_mask(const torch::Tensor& t, const torch::Tensor& mask, const char* what) {
  TORCH_CHECK(t.defined() && t.dim() == 2 && t.sizes() == mask.sizes(), "grpo_loss: ", what,
              " must be [N, T] like the mask ", mask.sizes());
}

}  // namespace

GrpoAdvantage parse_grpo_advantage(const std::string& name) {
  if (name == "standard") return GrpoAdvantage::kStandard;
  if (name == "centered") return GrpoAdvantage::kCentered;
  if (name == "rloo") return GrpoAdvantage::kLeaveOneOut;
  throw UserError("unknown GRPO advantage '" + name + "' (expected standard, centered or rloo)");
}

LossAggregation parse_loss_aggregation(const std::string& name) {
  if (name == "token_mean") return LossAggregation::kTokenMean;
  if (name == "sequence_mean") return LossAggregation::kSequenceMean;
  throw UserError("unknown loss aggregation '" + name + "' (expected token_mean or sequence_mean)");
}

void GrpoOptions::validate() const {
  const auto fail = [](const std::string& what) { throw UserError("grpo: " + what); };
  if (group_size < 2) fail(c10::str("group_size must be >= 2, got ", group_size));
  if (!(eps > 0) || !std::isfinite(eps)) fail(c10::str("eps must be > 0, got ", eps));
  if (!(clip > 0) || !std::isfinite(clip)) fail(c10::str("clip must be > 0, got ", clip));
  if (!(beta >= 0) || !std::isfinite(beta)) fail(c10::str("beta must be >= 0, got ", beta));
}

torch::Tensor grpo_advantages(const torch::Tensor& rewards, const GrpoOptions& options) {
  options.validate();
  TORCH_CHECK(rewards.dim() == 1 && rewards.size(0) % options.group_size == 0,
              "rewards must be [N] with N a multiple of group_size ", options.group_size, ", got ",
              rewards.sizes());
  torch::NoGradGuard no_grad;
  const auto groups = rewards.reshape({-1, options.group_size});  // [N / G, G]
  auto advantages = groups - groups.mean(1, /*keepdim=*/true);
  if (options.advantage == GrpoAdvantage::kStandard) {
    advantages = advantages / (groups.std(1, /*unbiased=*/false, /*keepdim=*/true) + options.eps);
  } else if (options.advantage == GrpoAdvantage::kLeaveOneOut) {
    // r - (Σ r - r) / (G - 1) = G / (G - 1) · (r - mean)
    const auto g = static_cast<double>(options.group_size);
    advantages = advantages * (g / (g - 1));
  }
  return advantages.reshape(-1);
}

GrpoLoss grpo_loss(const torch::Tensor& logps, const torch::Tensor& old_logps,
                   const torch::Tensor& ref_logps, const torch::Tensor& advantages,
                   const torch::Tensor& mask, const GrpoOptions& options) {
  options.validate();
  TORCH_CHECK(mask.dim() == 2, "grpo_loss: mask must be [N, T], got ", mask.sizes());
  check_like_mask(logps, mask, "logps");
  check_like_mask(old_logps, mask, "old_logps");
  TORCH_CHECK(advantages.dim() == 1 && advantages.size(0) == mask.size(0),
              "grpo_loss: advantages must be [N] = [", mask.size(0), "], got ", advantages.sizes());
  const double clip = options.clip;
  const auto ratio = torch::exp(logps - old_logps.detach());                // [N, T]
  const auto a = advantages.detach().to(ratio.scalar_type()).unsqueeze(1);  // [N, 1]
  auto per_token = torch::max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip));
  GrpoLoss out;
  if (options.beta > 0) {
    check_like_mask(ref_logps, mask, "ref_logps");
    const auto k3 = kl_k3(logps, ref_logps.detach());
    per_token = per_token + options.beta * k3;
    out.kl = masked_mean(k3.detach(), mask);
  } else {
    out.kl = torch::zeros({}, ratio.options());
  }
  out.loss = options.aggregation == LossAggregation::kTokenMean
                 ? masked_mean(per_token, mask)
                 : masked_mean(per_token, mask, 1).mean();
  out.clipfrac = masked_mean(((ratio.detach() - 1).abs() > clip).to(ratio.scalar_type()), mask);
  out.token_count = mask.to(torch::kBool).sum();
  return out;
}

}  // namespace flywheel::losses
