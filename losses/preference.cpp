#include "losses/preference.h"

#include <cmath>
#include <utility>

#include "trainer/core/error.h"

namespace flywheel::losses {
namespace {

constexpr std::pair<PreferenceLossType, const char*> kNames[] = {
    {PreferenceLossType::kDpo, "dpo"},
    {PreferenceLossType::kDpoNorm, "dpo_norm"},
    {PreferenceLossType::kIpo, "ipo"},
    {PreferenceLossType::kSimpo, "simpo"},
};

bool uses_reference(PreferenceLossType type) {
  return type != PreferenceLossType::kSimpo;
}

bool length_averaged(PreferenceLossType type) {
  return type != PreferenceLossType::kDpo;
}

// `t` as a [B] tensor in `dtype`, checked against the batch; `what` names it in errors.
torch::Tensor batch_input(const torch::Tensor& t, const char* what, int64_t batch,
                          torch::ScalarType dtype) {
  TORCH_CHECK(t.defined(), "preference_loss: ", what, " is required");
  TORCH_CHECK(t.dim() == 1 && t.size(0) == batch, "preference_loss: ", what, " must be [", batch,
              "], got ", t.sizes());
  return t.to(dtype);
}

// -(1-ε)·log σ(βz) - ε·log σ(-βz): the Bernoulli likelihood of the preference with labels
// flipped with probability ε (conservative DPO).
torch::Tensor smoothed_sigmoid_loss(const torch::Tensor& z, double beta, double eps) {
  return -(1 - eps) * torch::log_sigmoid(beta * z) - eps * torch::log_sigmoid(-beta * z);
}

}  // namespace

PreferenceLossType parse_preference_loss_type(const std::string& name) {
  std::string valid;
  for (const auto& [type, n] : kNames) {
    if (name == n) return type;
    valid += valid.empty() ? n : std::string(", ") + n;
  }
  throw UserError("unknown preference loss type '" + name + "' (expected one of " + valid + ")");
}

std::string preference_loss_type_name(PreferenceLossType type) {
  for (const auto& [t, n] : kNames) {
    if (t == type) return n;
  }
  TORCH_CHECK(false, "unknown PreferenceLossType ", static_cast<int>(type));
}

void PreferenceOptions::validate() const {
  const auto fail = [this](const std::string& what) {
    throw UserError(preference_loss_type_name(type) + " loss: " + what);
  };
  if (!(beta > 0) || !std::isfinite(beta)) fail(c10::str("beta must be > 0, got ", beta));
  if (!(label_smoothing >= 0 && label_smoothing < 0.5)) {
    fail(c10::str("label_smoothing must be in [0, 0.5), got ", label_smoothing));
  }
  if (type == PreferenceLossType::kIpo && label_smoothing != 0) {
    fail(c10::str("label_smoothing does not apply to ipo, got ", label_smoothing));
  }
  if (!(gamma_beta_ratio >= 0) || !std::isfinite(gamma_beta_ratio)) {
    fail(c10::str("gamma_beta_ratio must be >= 0, got ", gamma_beta_ratio));
  }
  if (!(rpo_alpha >= 0) || !std::isfinite(rpo_alpha)) {
    fail(c10::str("rpo_alpha must be >= 0, got ", rpo_alpha));
  }
}

PreferenceLoss preference_loss(const PreferenceInputs& in, const PreferenceOptions& options) {
  options.validate();
  const auto& anchor = in.policy_chosen_logps;
  TORCH_CHECK(anchor.defined() && anchor.dim() == 1,
              "preference_loss: policy_chosen_logps must be a [B] tensor");
  const auto dtype = anchor.scalar_type();
  const int64_t batch = anchor.size(0);
  const auto input = [&](const torch::Tensor& t, const char* what) {
    return batch_input(t, what, batch, dtype);
  };

  auto pi_c = input(in.policy_chosen_logps, "policy_chosen_logps");
  const auto summed_pi_c = pi_c;
  auto pi_r = input(in.policy_rejected_logps, "policy_rejected_logps");
  torch::Tensor ref_c, ref_r;
  if (uses_reference(options.type)) {
    ref_c = input(in.reference_chosen_logps, "reference_chosen_logps");
    ref_r = input(in.reference_rejected_logps, "reference_rejected_logps");
  }
  if (length_averaged(options.type)) {
    const auto len_c = input(in.chosen_lengths, "chosen_lengths").clamp_min(1);
    const auto len_r = input(in.rejected_lengths, "rejected_lengths").clamp_min(1);
    pi_c = pi_c / len_c;
    pi_r = pi_r / len_r;
    if (ref_c.defined()) {
      ref_c = ref_c / len_c;
      ref_r = ref_r / len_r;
    }
  }

  const double beta = options.beta;
  PreferenceLoss out;
  torch::Tensor chosen_rewards, rejected_rewards;
  if (options.type == PreferenceLossType::kSimpo) {
    const auto z = pi_c - pi_r - options.gamma_beta_ratio;
    out.per_example_loss = smoothed_sigmoid_loss(z, beta, options.label_smoothing);
    chosen_rewards = beta * pi_c;
    rejected_rewards = beta * pi_r;
  } else {
    const auto z = (pi_c - pi_r) - (ref_c - ref_r);
    out.per_example_loss = options.type == PreferenceLossType::kIpo
                               ? (z - 1 / (2 * beta)).square()
                               : smoothed_sigmoid_loss(z, beta, options.label_smoothing);
    chosen_rewards = beta * (pi_c - ref_c);
    rejected_rewards = beta * (pi_r - ref_r);
  }
  if (options.rpo_alpha > 0) {
    const auto len_c = input(in.chosen_lengths, "chosen_lengths").clamp_min(1);
    out.per_example_loss = out.per_example_loss - options.rpo_alpha * summed_pi_c / len_c;
  }
  out.loss = out.per_example_loss.mean();
  out.chosen_rewards = chosen_rewards.detach();
  out.rejected_rewards = rejected_rewards.detach();
  out.accuracy = (out.chosen_rewards > out.rejected_rewards).to(dtype).mean();
  out.margin = (out.chosen_rewards - out.rejected_rewards).mean();
  return out;
}

}  // namespace flywheel::losses
