#include "trainer/optim/optimizer.h"

#include <algorithm>

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/checkpoint/safetensors.h"

namespace flywheel {

std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(
    const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [name, p] : named_parameters(module)) {
    if (p.requires_grad()) out.emplace_back(name, p);
  }
  return out;
}

Optimizer::Optimizer(torch::nn::Module& module, const OptimizerOptions& options, Communicator& comm,
                     ParameterShards* shards)
    : Optimizer(trainable_parameters(module), options, comm, shards) {}

Optimizer::Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params,
                     const OptimizerOptions& options, Communicator& comm)
    : Optimizer(std::move(params), options, comm, nullptr) {}

Optimizer::Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params,
                     const OptimizerOptions& options, Communicator& comm, ParameterShards* shards)
    : params_(std::move(params)),
      comm_(comm),
      zero_stage_(comm.world_size() > 1 ? options.zero_stage : 0),
      shards_(zero_stage_ == 3 ? shards : nullptr) {
  for (const auto& [name, p] : params_)
    tensors_.push_back(p);
  std::optional<OwnerShards> owners;
  std::optional<UnitShards> units;
  if (zero_stage_ == 0) {
    replicated_.emplace(params_, options.adamw);
  } else if (zero_stage_ == 3) {
    TORCH_CHECK(shards_ != nullptr && shards_->num_parameters() == params_.size(),
                "ZeRO stage 3 trains a module whose parameters are sharded: pass its shards");
    sharded_.emplace(params_, shards_->segments(), shards_->segment_values(), options.adamw, comm);
    units = shards_->gradient_units(sharded_->gradient_shard());
  } else {
    sharded_.emplace(params_, options.adamw, comm, options.bucket_bytes);
    if (zero_stage_ == 2) owners = OwnerShards{sharded_->shard_size(), sharded_->gradient_shard()};
  }
  sync_.emplace(tensors_, comm, options.bucket_bytes, options.reduce_dtype, owners, units);
}

std::string Optimizer::describe() const {
  if (shards_) {
    return "ZeRO stage 3, parameters sharded in " + std::to_string(shards_->num_units()) + " units";
  }
  return "ZeRO stage " + std::to_string(zero_stage_) + ", " + std::to_string(sync_->num_buckets()) +
         " gradient buckets";
}

void Optimizer::broadcast_parameters() {
  // At stage 3 each part of the model exists once, on its owner: the ranks agree already.
  if (comm_.world_size() == 1 || shards_) return;
  torch::NoGradGuard no_grad;
  for (const auto& p : tensors_)
    comm_.broadcast(p.detach(), 0);
  if (replicated_) {
    replicated_->reset_masters();
  } else {
    sharded_->reset_masters();
  }
}

void Optimizer::accumulate(size_t count, size_t slots, const std::function<void(size_t)>& run) {
  auto& sync = *sync_;
  for (size_t i = 0; i < std::max(count, slots); ++i) {
    // Reduce-to-owner syncs every micro-batch; otherwise the last slot's backward overlaps the
    // all-reduce of everything accumulated.
    const bool round = sync.syncs_every_micro_batch() || i + 1 == std::max(count, slots);
    if (round) sync.arm();
    if (i < count) run(i);
    if (round) sync.finish();
  }
}

double Optimizer::step(double max_norm, double lr) {
  double norm = 0;
  if (replicated_) {
    norm = clip_grad_norm(sync_->gradients(), max_norm);
    replicated_->step(lr, sync_->gradients());
  } else {
    if (zero_stage_ == 1) sharded_->take_gradient(sync_->gradients());
    if (shards_) shards_->release_all();
    norm = sharded_->clip_grad_norm(max_norm);
    sharded_->step(lr);
  }
  sync_->zero();
  return norm;
}

void Optimizer::write(const std::string& dir) const {
  if (replicated_) {
    if (comm_.is_main()) write_safetensors(dir + "/optimizer.safetensors", replicated_->state());
  } else {
    sharded_->save_shard(dir);
  }
}

void Optimizer::load(const std::string& dir) {
  const auto state = read_optimizer_state(dir, params_);
  if (replicated_) {
    replicated_->load_state(state, dir);
  } else {
    sharded_->load_state(state, dir);
  }
}

}  // namespace flywheel
