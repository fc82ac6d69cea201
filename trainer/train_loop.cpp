#include "trainer/train_loop.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "trainer/adamw.h"
#include "trainer/batching.h"
#include "trainer/checkpoint_store.h"
#include "trainer/error.h"
#include "trainer/hf_checkpoint.h"
#include "trainer/lr_schedule.h"
#include "trainer/metrics_log.h"
#include "trainer/safetensors.h"

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

void save_checkpoint(const CheckpointStore& store, int64_t step, int64_t epoch,
                     Objective& objective, const AdamW& optimizer, const Recipe& recipe) {
  store.save(step, [&](const std::string& dir) {
    objective.save_model(dir + "/model");
    copy_tokenizer_files(recipe.model.tokenizer, dir + "/model");
    write_safetensors(dir + "/optimizer.safetensors", optimizer.state());
    auto rng = at::detail::getDefaultCPUGenerator().get_state();
    write_safetensors(dir + "/rng.safetensors", {{"torch_cpu", rng}});
    write_file_atomic(
        dir + "/trainer_state.json",
        json{{"step", step}, {"epoch", epoch}, {"recipe", recipe.source}}.dump(2) + "\n");
  });
}

// Restores model, optimizer and RNG from the newest valid checkpoint; returns its step (0
// when there is none).
int64_t restore_latest(const CheckpointStore& store, Objective& objective, AdamW& optimizer,
                       std::vector<std::string>* notes) {
  std::vector<std::string> problems;
  const auto found = store.latest_valid(&problems);
  for (const auto& p : problems)
    notes->push_back("skipping damaged checkpoint " + p);
  if (!found) {
    notes->push_back("no valid checkpoint to resume from; starting at step 0");
    return 0;
  }
  const std::string model_dir = found->dir + "/model";
  const auto config = load_model_config(model_dir + "/config.json");
  load_parameters(objective.model(), load_safetensors_dir(model_dir), config, model_dir);
  std::map<std::string, torch::Tensor> state;
  SafetensorsFile opt(found->dir + "/optimizer.safetensors");
  for (const auto& e : opt.entries())
    state[e.name] = opt.tensor(e.name);
  optimizer.load_state(state, opt.path());
  SafetensorsFile rng(found->dir + "/rng.safetensors");
  auto generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(rng.tensor("torch_cpu").clone());
  notes->push_back("resumed from " + found->dir);
  return found->step;
}

}  // namespace

TrainSummary run_training(const Recipe& recipe, Objective& objective, const TrainOptions& options) {
  const auto& t = recipe.training;
  fs::create_directories(recipe.output_dir);
  write_file_atomic(recipe.output_dir + "/config.yaml", recipe_to_yaml(recipe));

  const int64_t examples = objective.size();
  if (examples == 0) throw UserError(recipe.data.train_file + ": no training examples");
  const int64_t global_batch = t.micro_batch_size * t.gradient_accumulation_steps;
  const int64_t steps_per_epoch = (examples + global_batch - 1) / global_batch;
  int64_t total_steps = t.epochs * steps_per_epoch;
  if (t.max_steps > 0) total_steps = std::min(total_steps, t.max_steps);

  const LrSchedule schedule(t.lr_scheduler, t.learning_rate, total_steps, t.warmup_steps,
                            t.warmup_ratio);
  auto params = trainable(objective.model());
  std::vector<torch::Tensor> param_tensors;
  for (auto& [name, p] : params)
    param_tensors.push_back(p);
  AdamW optimizer(params, {t.adam_beta1, t.adam_beta2, t.adam_eps, t.weight_decay});
  const CheckpointStore store(recipe.output_dir + "/checkpoints", recipe.checkpoint.keep_last);

  std::vector<std::string> notes;
  int64_t step = 0;
  if (options.resume) {
    step = restore_latest(store, objective, optimizer, &notes);
  } else if (!store.list().empty()) {
    throw UserError(recipe.output_dir + " already holds a run (" + store.list().back().dir +
                    "): pass --resume to continue it, or choose another output_dir");
  }
  if (step >= total_steps && step > 0) {
    throw UserError(recipe.output_dir + ": the latest checkpoint is at step " +
                    std::to_string(step) + ", the run has " + std::to_string(total_steps) +
                    " steps: the run is complete");
  }

  // A fresh run starts a fresh log; a resumed one continues it.
  MetricsLog log(recipe.output_dir + "/metrics.jsonl", recipe.logging.progress, total_steps,
                 recipe.logging.every_steps, step, /*append=*/step > 0);
  for (const auto& n : notes)
    log.message(n);
  log.message(recipe.trainer + ": " + std::to_string(examples) + " examples, " +
              std::to_string(total_steps) + " steps of " + std::to_string(global_batch) +
              " examples (" + std::to_string(t.micro_batch_size) + " x " +
              std::to_string(t.gradient_accumulation_steps) + " accumulation), warmup " +
              std::to_string(schedule.warmup_steps()));

  auto evaluate = [&] {
    auto metrics = objective.evaluate();
    if (options.extra_eval) {
      for (const auto& [k, v] : options.extra_eval())
        metrics[k] = v;
    }
    return metrics;
  };
  TrainSummary summary;
  if (step == 0) {
    summary.eval_before = evaluate();
    if (!summary.eval_before.empty()) log.eval(0, summary.eval_before);
  }

  const auto lengths = objective.lengths();
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
    std::vector<std::vector<int64_t>> micro;
    for (size_t i = 0; i < batch.size(); i += static_cast<size_t>(t.micro_batch_size)) {
      const auto end = std::min(batch.size(), i + static_cast<size_t>(t.micro_batch_size));
      micro.emplace_back(batch.begin() + static_cast<std::ptrdiff_t>(i),
                         batch.begin() + static_cast<std::ptrdiff_t>(end));
    }
    double normalizer = 0;
    for (const auto& m : micro)
      normalizer += objective.units(m);

    objective.model().train();
    double loss = 0;
    int64_t tokens = 0;
    Metrics sums;
    for (const auto& m : micro) {
      auto result = objective.forward(m, std::max(normalizer, 1.0));
      result.loss.backward();
      loss += result.loss.item<double>();
      tokens += result.tokens;
      for (const auto& [k, v] : result.sums)
        sums[k] += v;
    }
    const double grad_norm = clip_grad_norm(param_tensors, t.max_grad_norm);
    const double lr = schedule.at(step);
    optimizer.step(lr);
    optimizer.zero_grad();
    ++step;

    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Metrics metrics = {{"loss", loss},
                       {"lr", lr},
                       {"grad_norm", grad_norm},
                       {"tokens_per_sec", static_cast<double>(tokens) / seconds},
                       {"epoch", static_cast<double>(step) / static_cast<double>(steps_per_epoch)}};
    for (const auto& [k, v] : sums)
      metrics[k] = v / std::max(normalizer, 1.0);
    log.train_step(step, metrics);

    if (step < total_steps && recipe.logging.eval_every_steps > 0 &&
        step % recipe.logging.eval_every_steps == 0) {
      log.eval(step, evaluate());
    }
    if (step < total_steps && recipe.checkpoint.every_steps > 0 &&
        step % recipe.checkpoint.every_steps == 0) {
      save_checkpoint(store, step, epoch, objective, optimizer, recipe);
      last_saved = step;
    }
  }
  summary.steps = step;
  if (last_saved != step) {
    save_checkpoint(store, step, (step - 1) / steps_per_epoch, objective, optimizer, recipe);
  }

  summary.eval_after = evaluate();
  if (!summary.eval_after.empty()) log.eval(step, summary.eval_after);

  // The final model, self-contained (weights, config, tokenizer), swapped in atomically.
  const fs::path final_dir = fs::path(recipe.output_dir) / "model";
  const fs::path tmp = fs::path(recipe.output_dir) / "model.tmp";
  fs::remove_all(tmp);
  objective.save_model(tmp.string());
  copy_tokenizer_files(recipe.model.tokenizer, tmp.string());
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  log.message("saved " + final_dir.string());
  return summary;
}

}  // namespace flywheel
