#include "trainer/train/model_builder.h"

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/core/error.h"
#include "trainer/model/init.h"
#include "trainer/model/parameter_storage.h"
#include "trainer/optim/optimizer.h"

namespace flywheel {

bool shards_parameters(const Recipe& recipe, const Communicator& comm) {
  return recipe.distributed.zero_stage == 3 && comm.world_size() > 1;
}

LlamaForCausalLM build_causal_lm(const Recipe& recipe, bool deferred) {
  const auto& m = recipe.model;
  const auto dtype = parse_dtype(m.dtype, "model.dtype");
  const auto device = parse_device(m.device, "model.device");
  LlamaForCausalLM model{nullptr};
  if (!m.path.empty()) {
    model = load_causal_lm(m.path, {dtype, device, deferred});
  } else {
    auto config = load_model_config(m.config);
    config.dtype = dtype;
    config.device = device;
    model = LlamaForCausalLM(config);
    init_weights(*model, m.init_std, recipe.seed);
  }
  model->model->activation_checkpointing = recipe.training.activation_checkpointing;
  return model;
}

std::unique_ptr<ParameterShards> shard_parameters(const Recipe& recipe, torch::nn::Module& model,
                                                  Communicator& comm) {
  if (!shards_parameters(recipe, comm)) return nullptr;
  const auto params = trainable_parameters(model);
  if (params.empty()) return nullptr;
  const bool deferred = storage_released(params.front().second);
  auto shards = std::make_unique<ParameterShards>(model, params, comm);
  if (deferred) shards->load(load_safetensors_dir(recipe.model.path));
  return shards;
}

}  // namespace flywheel
