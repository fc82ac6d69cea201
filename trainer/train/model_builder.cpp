#include "trainer/train/model_builder.h"

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/model/init.h"

namespace flywheel {

LlamaForCausalLM build_causal_lm(const Recipe& recipe) {
  const auto& m = recipe.model;
  const auto dtype = parse_dtype(m.dtype, "model.dtype");
  const auto device = parse_device(m.device, "model.device");
  LlamaForCausalLM model{nullptr};
  if (!m.path.empty()) {
    model = load_causal_lm(m.path, {dtype, device});
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

}  // namespace flywheel
