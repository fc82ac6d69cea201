// The DPO family of preference losses over summed sequence log-probs (see sequence_logps):
//   dpo      z = (π_c - π_r) - (ref_c - ref_r)          loss = -(1-ε)·log σ(βz) - ε·log σ(-βz)
//   dpo_norm as dpo with every log-prob divided by its own length (Tulu 3 uses β = 5)
//   ipo      as dpo_norm's z                             loss = (z - 1/(2β))²
//   simpo    z = π_c/len_c - π_r/len_r - γ/β (no ref)    loss as dpo
// with ε = label_smoothing and γ/β = gamma_beta_ratio. The implicit rewards are
// β·(π - ref) on the same (summed or length-averaged) log-probs, and β·π/len for simpo.
// rpo_alpha > 0 adds the chosen response's negative log-likelihood per token to every loss
// (RPO, Pang et al. 2024, "Iterative Reasoning Preference Optimization"; TRL's rpo_alpha):
//   loss += α · (-π_c / len_c)
// which keeps the probability of correct answers from falling while DPO widens the margin.
//
// Shapes: B = batch (preference pairs).
#pragma once

#include <torch/torch.h>

#include <string>

namespace flywheel::losses {

enum class PreferenceLossType { kDpo, kDpoNorm, kIpo, kSimpo };

// "dpo" | "dpo_norm" | "ipo" | "simpo"; UserError listing them otherwise.
PreferenceLossType parse_preference_loss_type(const std::string& name);
std::string preference_loss_type_name(PreferenceLossType type);

struct PreferenceOptions {
  PreferenceLossType type = PreferenceLossType::kDpo;
  double beta = 0.1;              // > 0
  double label_smoothing = 0.0;   // [0, 0.5): conservative DPO; dpo, dpo_norm and simpo only
  double gamma_beta_ratio = 0.5;  // >= 0, simpo's target margin γ/β
  double rpo_alpha = 0.0;         // >= 0, weight of the chosen NLL term; needs chosen_lengths

  // UserError naming the option when a value is out of range or does not apply to `type`.
  void validate() const;
};

struct PreferenceInputs {
  torch::Tensor policy_chosen_logps;       // [B] Σ log π over the chosen response
  torch::Tensor policy_rejected_logps;     // [B] Σ log π over the rejected response
  torch::Tensor reference_chosen_logps;    // [B] Σ log ref; undefined allowed for simpo only
  torch::Tensor reference_rejected_logps;  // [B]
  torch::Tensor chosen_lengths;            // [B] response tokens; needed by dpo_norm, ipo, simpo
                                           // and by rpo_alpha
  torch::Tensor rejected_lengths;          // [B]
};

struct PreferenceLoss {
  torch::Tensor loss;              // [] mean of per_example_loss, differentiable
  torch::Tensor per_example_loss;  // [B] differentiable
  torch::Tensor chosen_rewards;    // [B] detached
  torch::Tensor rejected_rewards;  // [B] detached
  torch::Tensor accuracy;          // [] detached, mean(chosen_rewards > rejected_rewards)
  torch::Tensor margin;            // [] detached, mean(chosen_rewards - rejected_rewards)
};

// Computed in the dtype of policy_chosen_logps. Lengths are clamped to >= 1.
PreferenceLoss preference_loss(const PreferenceInputs& in, const PreferenceOptions& options);

}  // namespace flywheel::losses
