#include "trainer/train_loop.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "trainer/adamw.h"
#include "trainer/batching.h"
#include "trainer/checkpoint_store.h"
#include "trainer/error.h"
#include "trainer/grad_sync.h"
#include "trainer/hf_checkpoint.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics_log.h"
#include "trainer/safetensors.h"
#include "trainer/zero.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::pair<std::string, torch::Tensor>> trainable(torch::nn::Module& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [name, p] : named_parameters(model)) {
    if (p.requires_grad()) out.emplace_back(name, p);
  }
  return out;
}

// The tokenizer files a model directory needs to be used on its own (generate, next stage).
void copy_tokenizer_files(const std::string& from, const std::string& to) {
  for (const char* name : {"tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path src = fs::path(from) / name;
    if (fs::exists(src))
      fs::copy_file(src, fs::path(to) / name, fs::copy_options::overwrite_existing);
  }
}

// AdamW replicated on every rank (ZeRO stage 0, and any single process) or sharded across
// ranks (stages 1 and 2), with the gradient synchronisation each needs, behind what the loop
// uses.
class Optimizer {
 public:
  Optimizer(const std::vector<std::pair<std::string, torch::Tensor>>& params,
            const AdamWOptions& options, Communicator& comm, int64_t zero_stage,
            int64_t bucket_bytes)
      : params_(params), comm_(comm), zero_stage_(zero_stage) {
    for (const auto& [name, p] : params)
      tensors_.push_back(p);
    std::optional<OwnerShards> owners;
    if (zero_stage == 0) {
      replicated_.emplace(params, options);
    } else {
      sharded_.emplace(params, options, comm);
      if (zero_stage == 2) owners = OwnerShards{sharded_->shard_size(), sharded_->gradient_shard()};
    }
    sync_.emplace(tensors_, comm, bucket_bytes, owners);
  }

  GradientSync& sync() { return *sync_; }
  int64_t zero_stage() const { return zero_stage_; }

  // After sync().finish(): clip to max_norm, update at lr, clear the gradients; returns the
  // gradient norm before clipping.
  double step(double max_norm, double lr) {
    double norm = 0;
    if (replicated_) {
      norm = clip_grad_norm(tensors_, max_norm);
      replicated_->step(lr);
      replicated_->zero_grad();
    } else {
      if (zero_stage_ == 1) sharded_->take_gradient_from_params();
      norm = sharded_->clip_grad_norm(max_norm);
      sharded_->step(lr);
      sharded_->zero_grad();
    }
    return norm;
  }

  // This rank's optimizer files: all of the state from rank 0 when replicated, every rank's
  // shard when sharded.
  void write(const std::string& dir) const {
    if (replicated_) {
      if (comm_.is_main()) write_safetensors(dir + "/optimizer.safetensors", replicated_->state());
    } else {
      sharded_->save_shard(dir);
    }
  }

  // From a checkpoint written at any world size and ZeRO stage.
  void load(const std::string& dir) {
    const auto state = read_optimizer_state(dir, params_);
    if (replicated_) {
      replicated_->load_state(state, dir);
    } else {
      sharded_->load_state(state, dir);
    }
  }

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> tensors_;
  Communicator& comm_;
  int64_t zero_stage_;
  std::optional<AdamW> replicated_;
  std::optional<ShardedAdamW> sharded_;
  std::optional<GradientSync> sync_;
};

// Rank 0 writes the model, RNG and trainer state; every rank its optimizer files (see
// Optimizer::write). With several ranks, rank 0 opens the staging directory before and seals
// it after everyone has written (checkpoints need a filesystem all ranks share).
void save_checkpoint(const CheckpointStore& store, int64_t step, int64_t epoch,
                     Objective& objective, const Optimizer& optimizer, const Recipe& recipe,
                     Communicator& comm) {
  auto write = [&](const std::string& dir) {
    if (comm.is_main()) {
      objective.save_model(dir + "/model");
      copy_tokenizer_files(recipe.model.tokenizer, dir + "/model");
      auto rng = at::detail::getDefaultCPUGenerator().get_state();
      write_safetensors(dir + "/rng.safetensors", {{"torch_cpu", rng}});
      write_file_atomic(dir + "/trainer_state.json", json{{"step", step},
                                                          {"epoch", epoch},
                                                          {"world_size", comm.world_size()},
                                                          {"zero_stage", optimizer.zero_stage()},
                                                          {"recipe", recipe.source}}
                                                             .dump(2) +
                                                         "\n");
    }
    optimizer.write(dir);
  };
  if (comm.world_size() == 1) {
    store.save(step, write);
    return;
  }
  if (comm.is_main()) store.begin(step);
  comm.barrier();
  write(store.staging_dir(step));
  comm.barrier();
  if (comm.is_main()) store.commit(step);
}

// Restores model, optimizer and RNG from the newest valid checkpoint; returns its step (0
// when there is none). Rank 0 picks the checkpoint, so every rank loads the same one.
int64_t restore_latest(const CheckpointStore& store, Objective& objective, Optimizer& optimizer,
                       Communicator& comm, std::vector<std::string>* notes) {
  std::vector<std::string> problems;
  std::optional<CheckpointRef> found;
  if (comm.is_main()) found = store.latest_valid(&problems);
  // Rank 0's choice, sent to all (the others contribute zero to the sum).
  auto chosen = torch::zeros({1}, torch::kFloat64);
  if (comm.is_main()) chosen[0] = found ? static_cast<double>(found->step) : -1.0;
  const auto step = static_cast<int64_t>(comm.all_reduce_sum_cpu(chosen).item<double>());
  for (const auto& p : problems)
    notes->push_back("skipping damaged checkpoint " + p);
  if (step < 0) {
    notes->push_back("no valid checkpoint to resume from; starting at step 0");
    return 0;
  }
  if (!comm.is_main()) found = store.find(step);
  if (!found) {
    throw UserError("rank " + std::to_string(comm.rank()) + " cannot see checkpoint step " +
                    std::to_string(step) + " that rank 0 resumes from (is output_dir on a " +
                    "shared filesystem?)");
  }
  const std::string model_dir = found->dir + "/model";
  const auto config = load_model_config(model_dir + "/config.json");
  load_parameters(objective.model(), load_safetensors_dir(model_dir), config, model_dir);
  optimizer.load(found->dir);
  SafetensorsFile rng(found->dir + "/rng.safetensors");
  auto generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(rng.tensor("torch_cpu").clone());
  notes->push_back("resumed from " + found->dir);
  return step;
}

// Rank 0's parameters on every rank, so replicas start identical whatever each loaded.
void broadcast_parameters(const std::vector<torch::Tensor>& params, Communicator& comm) {
  if (comm.world_size() == 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& p : params)
    comm.broadcast(p.detach(), 0);
}

// This rank's micro-batches of a step: the step's examples are cut into micro-batches in
// order, and rank r takes the r-th run of `accumulation` of them. 2 ranks x micro-batch b
// therefore see the same examples as 1 rank x 2b.
std::vector<std::vector<int64_t>> my_micro_batches(const std::vector<int64_t>& batch,
                                                   int64_t micro_batch_size, int64_t accumulation,
                                                   const Communicator& comm) {
  std::vector<std::vector<int64_t>> out;
  const auto micro = static_cast<size_t>(micro_batch_size);
  const auto first = static_cast<size_t>(comm.rank() * accumulation) * micro;
  const auto last = std::min(batch.size(), first + static_cast<size_t>(accumulation) * micro);
  for (size_t i = first; i < last; i += micro) {
    const auto end = std::min(last, i + micro);
    out.emplace_back(batch.begin() + static_cast<std::ptrdiff_t>(i),
                     batch.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return out;
}

}  // namespace

TrainSummary run_training(const Recipe& recipe, Objective& objective, const TrainOptions& options) {
  auto single = single_process_communicator();
  Communicator& comm = options.comm != nullptr ? *options.comm : *single;
  const bool main = comm.is_main();
  const auto& t = recipe.training;
  if (main) {
    fs::create_directories(recipe.output_dir);
    write_file_atomic(recipe.output_dir + "/config.yaml", recipe_to_yaml(recipe));
  }

  const int64_t examples = objective.size();
  if (examples == 0) throw UserError(recipe.data.train_file + ": no training examples");
  const int64_t global_batch =
      t.micro_batch_size * t.gradient_accumulation_steps * comm.world_size();
  const int64_t steps_per_epoch = (examples + global_batch - 1) / global_batch;
  int64_t total_steps = t.epochs * steps_per_epoch;
  if (t.max_steps > 0) total_steps = std::min(total_steps, t.max_steps);

  const LrSchedule schedule(t.lr_scheduler, t.learning_rate, total_steps, t.warmup_steps,
                            t.warmup_ratio);
  auto params = trainable(objective.model());
  std::vector<torch::Tensor> param_tensors;
  for (auto& [name, p] : params)
    param_tensors.push_back(p);
  // Sharding needs more than one rank; a single process runs plain AdamW whatever the recipe.
  const int64_t zero_stage = comm.world_size() > 1 ? recipe.distributed.zero_stage : 0;
  Optimizer optimizer(params, {t.adam_beta1, t.adam_beta2, t.adam_eps, t.weight_decay}, comm,
                      zero_stage, static_cast<int64_t>(recipe.distributed.bucket_mb * (1 << 20)));
  const CheckpointStore store(recipe.output_dir + "/checkpoints", recipe.checkpoint.keep_last);

  std::vector<std::string> notes;
  int64_t step = 0;
  if (options.resume) {
    step = restore_latest(store, objective, optimizer, comm, &notes);
  } else if (!store.list().empty()) {
    throw UserError(recipe.output_dir + " already holds a run (" + store.list().back().dir +
                    "): pass --resume to continue it, or choose another output_dir");
  }
  if (step >= total_steps && step > 0) {
    throw UserError(recipe.output_dir + ": the latest checkpoint is at step " +
                    std::to_string(step) + ", the run has " + std::to_string(total_steps) +
                    " steps: the run is complete");
  }
  broadcast_parameters(param_tensors, comm);
  GradientSync& grad_sync = optimizer.sync();

  // Rank 0 writes the log. A fresh run starts a fresh log; a resumed one continues it.
  std::optional<MetricsLog> log;
  if (main) {
    log.emplace(recipe.output_dir + "/metrics.jsonl", recipe.logging.progress, total_steps,
                recipe.logging.every_steps, step, /*append=*/step > 0);
    for (const auto& n : notes)
      log->message(n);
    std::string world;
    if (comm.world_size() > 1) {
      world = " x " + std::to_string(comm.world_size()) + " ranks (" + comm.world().launcher +
              ", ZeRO stage " + std::to_string(zero_stage) + ", " +
              std::to_string(grad_sync.num_buckets()) + " gradient buckets)";
    }
    log->message(recipe.trainer + ": " + std::to_string(examples) + " examples, " +
                 std::to_string(total_steps) + " steps of " + std::to_string(global_batch) +
                 " examples (" + std::to_string(t.micro_batch_size) + " x " +
                 std::to_string(t.gradient_accumulation_steps) + " accumulation" + world +
                 "), warmup " + std::to_string(schedule.warmup_steps()));
  }

  // Held-out evaluation runs on rank 0; the other ranks go on and wait in the next collective.
  auto evaluate = [&] {
    auto metrics = objective.evaluate();
    if (options.extra_eval) {
      for (const auto& [k, v] : options.extra_eval())
        metrics[k] = v;
    }
    return metrics;
  };
  TrainSummary summary;
  if (step == 0 && main) {
    summary.eval_before = evaluate();
    if (!summary.eval_before.empty()) log->eval(0, summary.eval_before);
  }

  const auto lengths = objective.lengths();
  const auto metric_names = objective.metric_names();
  int64_t planned_epoch = -1;
  std::vector<std::vector<int64_t>> plan;
  int64_t last_saved = -1;
  while (step < total_steps) {
    const auto start = std::chrono::steady_clock::now();
    const int64_t epoch = step / steps_per_epoch;
    if (epoch != planned_epoch) {
      plan = plan_epoch(lengths, global_batch, recipe.seed, epoch, recipe.data.group_by_length,
                        /*drop_last=*/false);
      planned_epoch = epoch;
    }
    const auto& batch = plan[static_cast<size_t>(step % steps_per_epoch)];
    // The normaliser covers the whole step, every rank's examples included.
    const double normalizer = std::max(objective.units(batch), 1.0);
    const auto micro =
        my_micro_batches(batch, t.micro_batch_size, t.gradient_accumulation_steps, comm);

    objective.model().train();
    // loss, tokens, then metric_names' sums: summed over this rank's micro-batches, then ranks.
    std::vector<double> totals(2 + metric_names.size(), 0.0);
    for (size_t i = 0; i < micro.size(); ++i) {
      auto result = objective.forward(micro[i], normalizer);
      if (i + 1 == micro.size()) grad_sync.arm();
      result.loss.backward();
      totals[0] += result.loss.item<double>();
      totals[1] += static_cast<double>(result.tokens);
      for (const auto& [k, v] : result.sums) {
        const auto it = std::find(metric_names.begin(), metric_names.end(), k);
        TORCH_CHECK(it != metric_names.end(), "metric '", k, "' is not in metric_names()");
        totals[2 + static_cast<size_t>(it - metric_names.begin())] += v;
      }
    }
    grad_sync.finish();
    totals = comm.all_reduce_sum(totals);
    const double lr = schedule.at(step);
    const double grad_norm = optimizer.step(t.max_grad_norm, lr);
    ++step;

    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (main) {
      Metrics metrics = {
          {"loss", totals[0]},
          {"lr", lr},
          {"grad_norm", grad_norm},
          {"tokens_per_sec", totals[1] / seconds},
          {"epoch", static_cast<double>(step) / static_cast<double>(steps_per_epoch)}};
      for (size_t k = 0; k < metric_names.size(); ++k)
        metrics[metric_names[k]] = totals[2 + k] / normalizer;
      log->train_step(step, metrics);
      if (step < total_steps && recipe.logging.eval_every_steps > 0 &&
          step % recipe.logging.eval_every_steps == 0) {
        log->eval(step, evaluate());
      }
    }
    if (step < total_steps && recipe.checkpoint.every_steps > 0 &&
        step % recipe.checkpoint.every_steps == 0) {
      save_checkpoint(store, step, epoch, objective, optimizer, recipe, comm);
      last_saved = step;
    }
  }
  summary.steps = step;
  if (last_saved != step) {
    save_checkpoint(store, step, (step - 1) / steps_per_epoch, objective, optimizer, recipe, comm);
  }
  if (main) {
    summary.eval_after = evaluate();
    if (!summary.eval_after.empty()) log->eval(step, summary.eval_after);

    // The final model, self-contained (weights, config, tokenizer), swapped in atomically.
    const fs::path final_dir = fs::path(recipe.output_dir) / "model";
    const fs::path tmp = fs::path(recipe.output_dir) / "model.tmp";
    fs::remove_all(tmp);
    objective.save_model(tmp.string());
    copy_tokenizer_files(recipe.model.tokenizer, tmp.string());
    fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
    log->message("saved " + final_dir.string());
  }
  // Nobody leaves before rank 0 has written the model: a launcher treats the first exit as
  // the end of the job.
  comm.barrier();
  return summary;
}

}  // namespace flywheel
