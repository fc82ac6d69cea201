// Building the model a recipe asks for: loaded from a checkpoint (model.path) or freshly
// initialised from a config.json (model.config), in the recipe's dtype, on its device, with
// activation checkpointing as training asks; and, under ZeRO-3 on several ranks, its parameter
// shards.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "trainer/dist/communicator.h"
#include "trainer/model/device.h"
#include "trainer/model/llama.h"
#include "trainer/optim/param_shards.h"
#include "trainer/train/recipe.h"

namespace flywheel {

// Whether the recipe's parameters are sharded (ZeRO-3) on comm's ranks.
bool shards_parameters(const Recipe& recipe, const Communicator& comm);

// The causal LM of the recipe. With `deferred` and a model.path, it is built without memory and
// only checked against the checkpoint (shard_parameters then loads each rank's parts).
LlamaForCausalLM build_causal_lm(const Recipe& recipe, bool deferred = false);

// The shards of `model`'s trainable parameters when shards_parameters(recipe, comm), else null.
// A model built deferred gets each rank's parts straight from model.path, a unit at a time, so
// no rank ever holds the whole model; any other is sharded from what it holds.
std::unique_ptr<ParameterShards> shard_parameters(const Recipe& recipe, torch::nn::Module& model,
                                                  Communicator& comm);

}  // namespace flywheel
