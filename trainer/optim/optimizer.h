// The optimizer of one trained model, as a training loop uses it: AdamW replicated on every
// rank (ZeRO stage 0, and any single process) or sharded across ranks (stages 1 to 3), with
// the gradient accumulation and synchronisation each needs. Gradients accumulate in float32
// and low-precision parameters train through float32 masters, whatever the model's dtype. A loop
// with several trained models (an RL policy and its value model) holds one per model; nothing here
// assumes a dataset or a loop shape.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trainer/dist/communicator.h"
#include "trainer/dist/grad_sync.h"
#include "trainer/optim/adamw.h"
#include "trainer/optim/param_shards.h"
#include "trainer/optim/zero.h"

namespace flywheel {

struct OptimizerOptions {
  AdamWOptions adamw;
  // 0 = replicated; 1 = optimizer state sharded; 2 = gradients sharded too; 3 = parameters
  // sharded too. Sharding needs more than one rank: a single process runs replicated AdamW
  // whatever is asked.
  int64_t zero_stage = 0;
  int64_t bucket_bytes = 25 << 20;  // gradient bucket size (float32 bytes)
  // The dtype gradients travel in between ranks; they accumulate in float32 either way.
  torch::ScalarType reduce_dtype = torch::kFloat32;
};

// The parameters of `module` that require gradients, with their Hugging Face names (which key
// the saved optimizer state).
std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(
    const torch::nn::Module& module);

class Optimizer {
 public:
  // Trains the parameters trainable_parameters(module) finds. At ZeRO stage 3 on several ranks
  // they are sharded already: `shards` holds them (trainer/train/model_builder.h), built over
  // the same module before this optimizer, and outliving it.
  Optimizer(torch::nn::Module& module, const OptimizerOptions& options, Communicator& comm,
            ParameterShards* shards = nullptr);
  // Stages 0 to 2 only.
  Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params,
            const OptimizerOptions& options, Communicator& comm);

  // One optimizer step's backward passes: run(i) does the forward and backward of this rank's
  // micro-batch i < count. Every rank passes the same `slots` (the most micro-batches a rank
  // can have in a step), so all run the same gradient synchronisation rounds.
  void accumulate(size_t count, size_t slots, const std::function<void(size_t)>& run);
  int64_t zero_stage() const { return zero_stage_; }
  // The sharded parameters at stage 3, else null (for ParameterShards::Whole).
  ParameterShards* parameter_shards() { return shards_; }
  // Whether every rank must run as many forward and backward passes as the others in a step
  // (stage 3 gathers parameters collectively inside them).
  bool needs_lockstep() const { return shards_ != nullptr; }
  // "ZeRO stage 1, 3 gradient buckets", for the run's opening log line.
  std::string describe() const;

  // Rank 0's parameters on every rank, so replicas start identical whatever each loaded (and
  // the masters with them). Before restoring a checkpoint, whose masters it would round.
  void broadcast_parameters();

  // After accumulate(): clip to max_norm, update at lr, clear the gradients; returns the
  // gradient norm before clipping. At stage 3 every gathered copy of the parameters is dropped.
  double step(double max_norm, double lr);

  // This rank's optimizer files in `dir`: all of the state from rank 0 when replicated, every
  // rank's shard when sharded.
  void write(const std::string& dir) const;
  // From files written at any world size and ZeRO stage.
  void load(const std::string& dir);

 private:
  Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params,
            const OptimizerOptions& options, Communicator& comm, ParameterShards* shards);

  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> tensors_;
  Communicator& comm_;
  int64_t zero_stage_;
  ParameterShards* shards_;
  std::optional<AdamW> replicated_;
  std::optional<ShardedAdamW> sharded_;
  std::optional<GradientSync> sync_;
};

}  // namespace flywheel
