// Running a loaded recipe to the end, as `flywheel train` and `flywheel quickstart` do: the RL
// loop for an RL trainer, else the supervised loop with its objective and, when the recipe's
// eval section asks, held-out accuracy of greedy answers judged by a verifier.
#pragma once

#include <map>
#include <string>

#include "trainer/dist/communicator.h"
#include "trainer/train/recipe.h"

namespace flywheel::cli {

struct RecipeResult {
  std::map<std::string, double> eval_before, eval_after;  // held-out metrics (rank 0)
};

RecipeResult run_recipe(const Recipe& recipe, bool resume, Communicator& comm);

}  // namespace flywheel::cli
