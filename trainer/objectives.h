// The training objectives, one per algorithm family, each in its own file:
//   sft_objective.cpp      supervised fine-tuning (token-level cross-entropy)
//   dpo_objective.cpp      DPO, length-normalised DPO, IPO, SimPO with a cached reference
//   reward_objective.cpp   Bradley–Terry / Plackett–Luce reward models
#pragma once

#include <memory>

#include "trainer/batching.h"
#include "trainer/communicator.h"
#include "trainer/device.h"
#include "trainer/objective.h"
#include "trainer/recipe.h"

namespace flywheel {

// A collated batch moved to the model's device.
inline TokenBatch on_device(TokenBatch b, const torch::Device& device) {
  b.input_ids = to_device(b.input_ids, device);
  b.labels = to_device(b.labels, device);
  b.attention_mask = to_device(b.attention_mask, device);
  b.position_ids = to_device(b.position_ids, device);
  return b;
}

// `comm` is the training job's: data statistics are reported by rank 0 only, and DPO's
// reference pass is split across ranks.
std::unique_ptr<Objective> make_sft_objective(const Recipe& recipe, Communicator& comm);
std::unique_ptr<Objective> make_dpo_objective(const Recipe& recipe, bool resume,
                                              Communicator& comm);
std::unique_ptr<Objective> make_reward_objective(const Recipe& recipe, Communicator& comm);

// Dispatches on recipe.trainer.
std::unique_ptr<Objective> make_objective(const Recipe& recipe, bool resume, Communicator& comm);

}  // namespace flywheel
