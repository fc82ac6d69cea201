// Training checkpoints of a whole run, over the atomic CheckpointStore: every trained model,
// every optimizer, the CPU random generator and the trainer's own state, written by the ranks
// that own each part and restored from the newest checkpoint that verifies. A checkpoint:
//   DIR/<model name>/         each model in Hugging Face format (config.json + safetensors)
//   DIR/optimizer*.safetensors  the optimizer registered with subdir "" (others: DIR/<subdir>/)
//   DIR/rng.safetensors       the CPU generator's state
//   DIR/trainer_state.json    step, world size and whatever the loop adds
// Parts are registered, so a loop with a policy, a value model and their two optimizers uses
// the same class as the supervised loop with one of each.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/dist/communicator.h"
#include "trainer/optim/optimizer.h"

namespace flywheel {

// Writes a model, self-contained, into an existing empty directory, calling `before` with each
// parameter as it is written (save_pretrained).
using SaveModelFn = std::function<void(const std::string& dir, const BeforeWrite& before)>;

// Runs `save` on rank 0 with the model readable there: directly, or under ZeRO-3 (non-null
// `shards`) a unit at a time, each gathered as `save` reaches its parameters, every rank taking
// part. Every rank calls it at the same point.
void save_on_main(ParameterShards* shards, Communicator& comm,
                  const std::function<void(const BeforeWrite& before)>& save);

class Checkpointer {
 public:
  Checkpointer(const std::string& root, int64_t keep_last, Communicator& comm);

  // `module` receives the weights of DIR/<name>/ on restore; `save` writes them (rank 0 only).
  // `shards`: the module's parameters when ZeRO-3 shards them (gathered whole around both).
  void add_model(const std::string& name, torch::nn::Module& module, SaveModelFn save,
                 ParameterShards* shards = nullptr);
  // The optimizer's files go in DIR/<subdir>/ ("" = DIR itself).
  void add_optimizer(const std::string& subdir, Optimizer& optimizer);

  // Writes checkpoint `step` from every rank. trainer_state.json holds `state` plus "step" and
  // "world_size". With several ranks, rank 0 opens the staging directory before and seals it
  // after everyone has written (checkpoints need a filesystem all ranks share).
  void save(int64_t step, nlohmann::json state);
  // The step of the last save(), -1 before any.
  int64_t last_saved() const { return last_saved_; }
  // Keeps checkpoint `step` besides the last keep_last (checkpoint.keep_best), or none; rank 0
  // removes what is no longer kept.
  void keep(std::optional<int64_t> step);

  // Restores every part from the newest valid checkpoint and returns its step, or 0 when there
  // is none. Rank 0 picks it, so every rank loads the same one. What was skipped or used is
  // appended to `notes`.
  int64_t restore_latest(std::vector<std::string>* notes);
  // The restored checkpoint's trainer_state.json (the `state` its save() was given, plus "step"
  // and "world_size"); empty before a restore.
  const nlohmann::json& restored_state() const { return restored_state_; }

  // The newest sealed checkpoint directory, verified or not (a fresh run refuses to mix its
  // checkpoints with an earlier run's).
  std::optional<std::string> newest() const;

 private:
  struct Model {
    std::string name;
    torch::nn::Module* module;
    SaveModelFn save;
    ParameterShards* shards;
  };
  struct OptimizerPart {
    std::string subdir;
    Optimizer* optimizer;
  };
  void write(const std::string& dir, const nlohmann::json& state) const;

  CheckpointStore store_;
  Communicator& comm_;
  std::vector<Model> models_;
  std::vector<OptimizerPart> optimizers_;
  int64_t last_saved_ = -1;
  nlohmann::json restored_state_;
};

// Writes a model into `dir` through `save` so that `dir` changes in one step: into DIR.tmp,
// then swapped in by rename (an interrupted run never leaves a half-written final model).
void publish_model(const std::string& dir, const SaveModelFn& save, const BeforeWrite& before);

}  // namespace flywheel
