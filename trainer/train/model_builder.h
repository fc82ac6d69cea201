// Building the model a recipe asks for: loaded from a checkpoint (model.path) or freshly
// initialised from a config.json (model.config), in the recipe's dtype, on its device, with
// activation checkpointing as training asks.
#pragma once

#include <torch/torch.h>

#include <string>

#include "trainer/model/device.h"
#include "trainer/model/llama.h"
#include "trainer/train/recipe.h"

namespace flywheel {

LlamaForCausalLM build_causal_lm(const Recipe& recipe);

}  // namespace flywheel
