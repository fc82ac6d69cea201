// The training life cycle shared by every algorithm: plan the data, then for each optimizer
// step run the micro-batches (gradient accumulation), clip, schedule the learning rate, step
// AdamW; log metrics, evaluate, checkpoint; at the end save the model. Resumes exactly from
// the latest valid checkpoint. Under data parallelism each rank runs its share of every
// step's micro-batches and gradients are summed across ranks (trainer/grad_sync.h).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "trainer/communicator.h"
#include "trainer/objective.h"
#include "trainer/recipe.h"

namespace flywheel {

struct TrainOptions {
  bool resume = false;
  // Extra held-out metrics merged into every evaluation (e.g. accuracy by generation, wired
  // in by the caller so the core does not depend on rollout/ or verifiers/).
  std::function<std::map<std::string, double>()> extra_eval;
  // The data-parallel job this process is a rank of; null = a single process. Rank 0 logs,
  // evaluates and writes checkpoints and the final model.
  Communicator* comm = nullptr;
};

struct TrainSummary {
  int64_t steps = 0;
  std::map<std::string, double> eval_before, eval_after;
};

// Runs the recipe's training on `objective`. The run directory gets config.yaml,
// metrics.jsonl, checkpoints/step-N/ and the final model in model/.
TrainSummary run_training(const Recipe& recipe, Objective& objective, const TrainOptions& options);

}  // namespace flywheel
