// The training objectives, one per algorithm family, each in its own file:
//   sft_objective.cpp      supervised fine-tuning (token-level cross-entropy)
//   dpo_objective.cpp      DPO, length-normalised DPO, IPO, SimPO with a cached reference
//   reward_objective.cpp   Bradley–Terry / Plackett–Luce reward models
#pragma once

#include <memory>

#include "trainer/batching.h"
#include "trainer/objective.h"
#include "trainer/recipe.h"

namespace flywheel {

// A collated batch moved to the model's device.
inline TokenBatch on_device(TokenBatch b, const torch::Device& device) {
  b.input_ids = b.input_ids.to(device);
  b.labels = b.labels.to(device);
  b.attention_mask = b.attention_mask.to(device);
  b.position_ids = b.position_ids.to(device);
  return b;
}

std::unique_ptr<Objective> make_sft_objective(const Recipe& recipe);
std::unique_ptr<Objective> make_dpo_objective(const Recipe& recipe, bool resume);
std::unique_ptr<Objective> make_reward_objective(const Recipe& recipe);

// Dispatches on recipe.trainer.
std::unique_ptr<Objective> make_objective(const Recipe& recipe, bool resume);

}  // namespace flywheel
