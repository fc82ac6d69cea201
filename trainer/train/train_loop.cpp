#include "trainer/train/train_loop.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/core/metrics_log.h"
#include "trainer/model/device.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/optimizer.h"
#include "trainer/train/checkpointer.h"
#include "trainer/train/schedule.h"
#include "trainer/train/step_metrics.h"
#include "trainer/train/step_plan.h"

namespace flywheel {
namespace {

StepPlanOptions plan_options(const Recipe& recipe, const Communicator& comm) {
  const auto& t = recipe.training;
  return {.micro_batch_size = t.micro_batch_size,
          .accumulation = t.gradient_accumulation_steps,
          .world_size = comm.world_size(),
          .rank = comm.rank(),
          .epochs = t.epochs,
          .max_steps = t.max_steps,
          .seed = recipe.seed,
          .group_by_length = recipe.data.group_by_length};
}

// Rank 0's log (null on the other ranks): a fresh run starts a fresh one, a resumed run continues
// it.
std::unique_ptr<MetricsLog> open_log(const Recipe& recipe, const StepPlan& plan,
                                     const LrSchedule& schedule, const Optimizer& optimizer,
                                     const Communicator& comm, int64_t examples, int64_t step,
                                     const std::vector<std::string>& notes) {
  if (!comm.is_main()) return nullptr;
  auto log = std::make_unique<MetricsLog>(recipe.output_dir + "/metrics.jsonl",
                                          recipe.logging.progress, plan.total_steps(),
                                          recipe.logging.every_steps, step, /*append=*/step > 0);
  for (const auto& n : notes)
    log->message(n);
  const auto& t = recipe.training;
  std::string world;
  if (comm.world_size() > 1) {
    world = " x " + std::to_string(comm.world_size()) + " ranks (" + comm.world().launcher + ", " +
            optimizer.describe() + ")";
  }
  log->message(recipe.trainer + ": " + std::to_string(examples) + " examples, " +
               std::to_string(plan.total_steps()) + " steps of " +
               std::to_string(plan.global_batch()) + " examples (" +
               std::to_string(t.micro_batch_size) + " x " +
               std::to_string(t.gradient_accumulation_steps) + " accumulation" + world +
               "), warmup " + std::to_string(schedule.warmup_steps()));
  return log;
}

// Optimizer step `step` (0-based): this rank's micro-batches forward and backward, gradients
// accumulated and synchronised by the optimizer, then clip, schedule and update. Returns the step's
// metrics, reduced over ranks.
Metrics train_step(Objective& objective, StepPlan& plan, Optimizer& optimizer,
                   const LrSchedule& schedule, double max_grad_norm, Communicator& comm,
                   int64_t step) {
  const auto start = std::chrono::steady_clock::now();
  const auto& batch = plan.batch(step);
  // The normaliser covers the whole step, every rank's examples included.
  const double normalizer = std::max(objective.units(batch), 1.0);
  auto micro = plan.my_micro_batches(batch);
  const size_t mine = micro.size(), slots = static_cast<size_t>(plan.accumulation());
  // Under ZeRO-3 a rank short of micro-batches runs stand-ins (the step's first example, with
  // its loss times zero), so that every rank gathers the same parameters the same number of
  // times; they change no gradient and no metric.
  while (optimizer.needs_lockstep() && micro.size() < slots)
    micro.push_back({batch.front()});
  StepMetrics sums(objective.metric_names());
  objective.model().train();
  optimizer.accumulate(micro.size(), slots, [&](size_t i) {
    auto result = objective.forward(micro[i], normalizer);
    if (i >= mine) {
      (result.loss * 0).backward();
      return;
    }
    result.loss.backward();
    sums.add(result.loss.item<double>(), result.token_count, result.sums);
  });
  sums.all_reduce(comm);
  const double lr = schedule.at(step);
  const double grad_norm = optimizer.step(max_grad_norm, lr);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto device = objective.model().parameters().front().device();
  Metrics metrics = {
      {"loss", sums.loss()},
      {"peak_memory_gb",
       max_over_ranks(static_cast<double>(peak_memory_bytes(device)), comm) / (1 << 30)},
      {"lr", lr},
      {"grad_norm", grad_norm},
      {"tokens_per_sec", sums.token_count() / seconds},
      {"epoch", static_cast<double>(step + 1) / static_cast<double>(plan.steps_per_epoch())}};
  for (const auto& [k, v] : sums.means(normalizer))
    metrics[k] = v;
  return metrics;
}

nlohmann::json trainer_state(const Recipe& recipe, const StepPlan& plan, const Optimizer& optimizer,
                             int64_t step) {
  return {{"epoch", plan.epoch_of(step - 1)},
          {"zero_stage", optimizer.zero_stage()},
          {"recipe", recipe.source}};
}

Metrics log_eval(MetricsLog& log, int64_t step, Metrics metrics) {
  if (!metrics.empty()) log.eval(step, metrics);
  return metrics;
}

}  // namespace

OptimizerOptions optimizer_options(const Recipe& recipe) {
  const auto& t = recipe.training;
  return {.adamw = {t.adam_beta1, t.adam_beta2, t.adam_eps, t.weight_decay},
          .zero_stage = recipe.distributed.zero_stage,
          .bucket_bytes = static_cast<int64_t>(recipe.distributed.bucket_mb * (1 << 20)),
          .reduce_dtype = parse_dtype(recipe.distributed.reduce_dtype, "distributed.reduce_dtype")};
}

void start_run_dir(const Recipe& recipe, const Communicator& comm) {
  if (!comm.is_main()) return;
  std::filesystem::create_directories(recipe.output_dir);
  write_file_atomic(recipe.output_dir + "/config.yaml", recipe_to_yaml(recipe));
}

int64_t first_step(Checkpointer& checkpointer, const Recipe& recipe, bool resume,
                   int64_t total_steps, std::vector<std::string>* notes) {
  if (!resume) {
    if (const auto newest = checkpointer.newest()) {
      throw UserError(recipe.output_dir + " already holds a run (" + *newest +
                      "): pass --resume to continue it, or choose another output_dir");
    }
    return 0;
  }
  const int64_t step = checkpointer.restore_latest(notes);
  if (step >= total_steps && step > 0) {
    throw UserError(recipe.output_dir + ": the latest checkpoint is at step " +
                    std::to_string(step) + ", the run has " + std::to_string(total_steps) +
                    " steps: the run is complete");
  }
  return step;
}

TrainSummary run_training(const Recipe& recipe, Objective& objective, const TrainOptions& options) {
  auto single = single_process_communicator();
  Communicator& comm = options.comm != nullptr ? *options.comm : *single;
  if (objective.size() == 0) throw UserError(recipe.data.train_file + ": no training examples");
  // What building the objective (model, shards, data) took, before any optimizer state: under
  // ZeRO-3 a loaded model never stands whole on a rank.
  std::vector<std::string> notes;
  {
    const auto device = objective.model().parameters().front().device();
    const double loaded = max_over_ranks(static_cast<double>(peak_memory_bytes(device)), comm);
    char line[96];
    std::snprintf(line, sizeof line, "model and data loaded: peak %.4f GiB per rank",
                  loaded / (1 << 30));
    notes.emplace_back(line);
  }
  start_run_dir(recipe, comm);
  const auto& t = recipe.training;
  StepPlan plan(objective.lengths(), plan_options(recipe, comm));
  const LrSchedule schedule(t.lr_scheduler, t.learning_rate, plan.total_steps(), t.warmup_steps,
                            t.warmup_ratio);
  Optimizer optimizer(objective.model(), optimizer_options(recipe), comm,
                      objective.parameter_shards());
  const SaveModelFn save_model = [&](const std::string& dir, const BeforeWrite& before) {
    objective.save_model(dir, before);
    copy_tokenizer_files(recipe.model.tokenizer, dir, recipe.data.options.chat_template);
  };
  Checkpointer checkpointer(recipe.output_dir + "/checkpoints", recipe.checkpoint.keep_last, comm);
  checkpointer.add_model("model", objective.model(), save_model, optimizer.parameter_shards());
  checkpointer.add_optimizer("", optimizer);

  optimizer.broadcast_parameters();
  int64_t step = first_step(checkpointer, recipe, options.resume, plan.total_steps(), &notes);
  auto log = open_log(recipe, plan, schedule, optimizer, comm, objective.size(), step, notes);
  // Held-out evaluation and the arena run on rank 0; the other ranks go on and wait in the next
  // collective (under ZeRO-3, once they have helped gather the whole model onto rank 0).
  const Evaluation eval{{[&] { return objective.evaluate(); }, options.extra_eval},
                        Periodic(recipe.logging.eval_every_steps, plan.total_steps())};
  const StepEvaluation& arena = options.arena;
  const Periodic arena_due(arena.every, plan.total_steps());
  // Without an eval file or extra evaluation there is nothing to gather the model for.
  const bool evaluates = !recipe.data.eval_file.empty() || options.extra_eval;
  const auto evaluate = [&](int64_t at, bool held_out, bool rate) {
    held_out = held_out && evaluates;
    rate = rate && arena;
    if (!held_out && !rate) return Metrics{};
    const ParameterShards::Whole whole(optimizer.parameter_shards(), 0);
    if (!log) return Metrics{};
    Metrics metrics = held_out ? eval.run() : Metrics{};
    if (rate) metrics.merge(arena.run(at));
    return log_eval(*log, at, std::move(metrics));
  };
  const Periodic checkpoint_due(recipe.checkpoint.every_steps, plan.total_steps());
  const auto keep_best = [&] {
    if (arena.best_step) checkpointer.keep(arena.best_step());
  };
  // The arena forgets the rounds after the step it starts from (a fresh run's old files
  // included), and its best checkpoint is kept before any save prunes.
  if (arena && arena.resume_at && log) arena.resume_at(step);
  keep_best();

  TrainSummary summary;
  if (step == 0) summary.eval_before = evaluate(0, true, true);
  while (step < plan.total_steps()) {
    const auto metrics =
        train_step(objective, plan, optimizer, schedule, t.max_grad_norm, comm, step);
    ++step;
    if (log) log->train_step(step, metrics);
    const bool rated = arena && arena_due.due(step);
    if (eval.when.due(step) || rated) evaluate(step, eval.when.due(step), rated);
    // Every rated step is checkpointed when the best-rated one is to be kept.
    if (checkpoint_due.due(step) || (rated && arena.best_step)) {
      checkpointer.save(step, trainer_state(recipe, plan, optimizer, step));
      keep_best();
    }
  }
  summary.steps = step;
  // The last evaluation before the last checkpoint: a round that fails leaves a run that
  // --resume finishes, not one it calls complete.
  summary.eval_after = evaluate(step, true, true);
  if (checkpointer.last_saved() != step)
    checkpointer.save(step, trainer_state(recipe, plan, optimizer, step));
  keep_best();
  // The final model, self-contained (weights, config, tokenizer), swapped in atomically.
  save_on_main(optimizer.parameter_shards(), comm, [&](const BeforeWrite& before) {
    const auto final_dir = (std::filesystem::path(recipe.output_dir) / "model").string();
    publish_model(final_dir, save_model, before);
    if (log) log->message("saved " + final_dir);
  });
  // Nobody leaves before rank 0 has written the model: a launcher treats the first exit as
  // the end of the job.
  comm.barrier();
  return summary;
}

}  // namespace flywheel
