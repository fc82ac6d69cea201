// The training life cycle shared by every algorithm: plan the data, then for each optimizer
// step run the micro-batches (gradient accumulation), clip, schedule the learning rate, step
// AdamW; log metrics, evaluate, checkpoint; at the end save the model. Resumes exactly from
// the latest valid checkpoint.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "trainer/objective.h"
#include "trainer/recipe.h"

namespace flywheel {

struct TrainOptions {
  bool resume = false;
  // Extra held-out metrics merged into every evaluation (e.g. accuracy by generation, wired
  // in by the caller so the core does not depend on rollout/ or verifiers/).
  std::function<std::map<std::string, double>()> extra_eval;
};

struct TrainSummary {
  int64_t steps = 0;
  std::map<std::string, double> eval_before, eval_after;
};

// Runs the recipe's training on `objective`. The run directory gets config.yaml,
// metrics.jsonl, checkpoints/step-N/ and the final model in model/.
TrainSummary run_training(const Recipe& recipe, Objective& objective, const TrainOptions& options);

}  // namespace flywheel
