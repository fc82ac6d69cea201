#include "trainer/train/objective.h"

#include "trainer/core/error.h"

namespace flywheel {

std::unique_ptr<Objective> make_objective(const Recipe& recipe, bool resume, Communicator& comm) {
  if (recipe.trainer == "sft") return make_sft_objective(recipe, comm);
  if (recipe.trainer == "dpo") return make_dpo_objective(recipe, resume, comm);
  if (recipe.trainer == "reward_model") return make_reward_objective(recipe, comm);
  throw UserError(recipe.source + ": unknown trainer '" + recipe.trainer + "'");
}

}  // namespace flywheel
