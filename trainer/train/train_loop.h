// The supervised training loop (SFT, DPO, reward models), as a short life cycle over parts
// that any loop can reuse:
//
//   setup     StepPlan (step_plan.h), LrSchedule, Optimizer (optim/optimizer.h),
//             Checkpointer (checkpointer.h), the rank-0 MetricsLog
//   resume    Checkpointer::restore_latest, then Optimizer::broadcast_parameters
//   each step plan -> forward/backward over this rank's micro-batches -> gradient sync ->
//             optimizer step -> StepMetrics reduced over ranks -> log -> evaluation and
//             checkpoint when Periodic says so (schedule.h)
//   end       final checkpoint and evaluation, publish_model
//
// A second loop family, online RL (trainer/rl/rl_loop.h), owns what this loop takes from
// Objective: its data (rollouts generated every step), several models (policy, value, frozen
// reference) and several optimizer steps per rollout batch. It composes the same parts: one
// Optimizer per trained model, one Checkpointer with every model and optimizer registered,
// rank_micro_batches over its rollouts, StepMetrics, Periodic and Evaluation, MetricsLog; none of
// them assumes a static dataset or a single module.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "trainer/dist/communicator.h"
#include "trainer/optim/optimizer.h"
#include "trainer/train/checkpointer.h"
#include "trainer/train/objective.h"
#include "trainer/train/recipe.h"
#include "trainer/train/schedule.h"

namespace flywheel {

struct TrainOptions {
  bool resume = false;
  // Extra held-out metrics merged into every evaluation (e.g. accuracy by generation, wired
  // in by the caller so the core does not depend on rollout/ or verifiers/).
  std::function<std::map<std::string, double>()> extra_eval;
  // The arena over the run's checkpoints (eval.arena), wired in by the caller like extra_eval.
  StepEvaluation arena;
  // The data-parallel job this process is a rank of; null = a single process. Rank 0 logs,
  // evaluates and writes checkpoints and the final model.
  Communicator* comm = nullptr;
};

struct TrainSummary {
  int64_t steps = 0;
  std::map<std::string, double> eval_before, eval_after;
};

// Parts the RL loop shares with this one.
// The optimizer settings of the recipe's training and distributed sections.
OptimizerOptions optimizer_options(const Recipe& recipe);
// Rank 0 writes the resolved recipe into a fresh or resumed run directory.
void start_run_dir(const Recipe& recipe, const Communicator& comm);
// The step to start from: the latest checkpoint's when resuming, else 0 (refusing to start
// over an earlier run's checkpoints, or to resume a finished run).
int64_t first_step(Checkpointer& checkpointer, const Recipe& recipe, bool resume,
                   int64_t total_steps, std::vector<std::string>* notes);

// Runs the recipe's training on `objective`. The run directory gets config.yaml,
// metrics.jsonl, checkpoints/step-N/ and the final model in model/. Resumes exactly from the
// latest valid checkpoint. Under data parallelism each rank runs its share of every step's
// micro-batches and gradients are summed across ranks (trainer/dist/grad_sync.h).
TrainSummary run_training(const Recipe& recipe, Objective& objective, const TrainOptions& options);

}  // namespace flywheel
