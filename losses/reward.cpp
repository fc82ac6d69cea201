#include "losses/reward.h"

#include <cmath>
#include <tuple>

#include "trainer/core/error.h"

namespace flywheel::losses {

void BradleyTerryOptions::validate() const {
  if (!(center_coefficient >= 0) || !std::isfinite(center_coefficient)) {
    throw UserError(
        c10::str("reward model loss: center_coefficient must be >= 0, got ", center_coefficient));
  }
}

BradleyTerryLoss bradley_terry_loss(const torch::Tensor& chosen_scores,
                                    const torch::Tensor& rejected_scores,
                                    const torch::Tensor& margins,
                                    const BradleyTerryOptions& options) {
  options.validate();
  TORCH_CHECK(chosen_scores.dim() == 1 && chosen_scores.sizes() == rejected_scores.sizes(),
              "chosen_scores and rejected_scores must both be [B], got ", chosen_scores.sizes(),
              " and ", rejected_scores.sizes());
  auto diff = chosen_scores - rejected_scores;  // [B]
  BradleyTerryLoss out;
  out.accuracy = (diff > 0).to(diff.scalar_type()).mean().detach();
  out.margin = diff.mean().detach();
  if (margins.defined()) {
    TORCH_CHECK(margins.sizes() == chosen_scores.sizes(),
                "margins must be [B] = ", chosen_scores.sizes(), ", got ", margins.sizes());
    diff = diff - margins.to(diff.scalar_type());
  }
  out.loss = -torch::log_sigmoid(diff).mean();
  if (options.center_coefficient > 0) {
    out.loss =
        out.loss + options.center_coefficient * (chosen_scores + rejected_scores).square().mean();
  }
  return out;
}

PlackettLuceLoss plackett_luce_loss(const torch::Tensor& scores, const torch::Tensor& ranking) {
  TORCH_CHECK(scores.dim() == 2 && scores.size(1) >= 2, "scores must be [B, K] with K >= 2, got ",
              scores.sizes());
  TORCH_CHECK(ranking.sizes() == scores.sizes(), "ranking must be [B, K] = ", scores.sizes(),
              ", got ", ranking.sizes());
  const int64_t k = scores.size(1);
  const auto identity = torch::arange(k, ranking.options()).expand_as(ranking);
  TORCH_CHECK(std::get<0>(ranking.sort(1)).equal(identity),
              "each ranking row must be a permutation of 0..", k - 1);
  const auto ordered = scores.gather(1, ranking);  // [B, K] best first
  // logsumexp(s_(i), …, s_(K)) for every i: a cumulative logsumexp from the worst end.
  const auto tail_lse = ordered.flip(1).logcumsumexp(1).flip(1);  // [B, K]
  // The last term, s_(K) - logsumexp(s_(K)), is identically 0 and left out.
  const auto log_likelihood = (ordered - tail_lse).slice(1, 0, k - 1).sum(1);  // [B]
  PlackettLuceLoss out;
  out.per_example_loss = -log_likelihood;
  out.loss = out.per_example_loss.mean();
  return out;
}

}  // namespace flywheel::losses
