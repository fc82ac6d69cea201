#include "trainer/train/model_builder.h"

#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/model/init.h"

namespace flywheel {

LlamaForCausalLM build_causal_lm(const ModelSection& m, uint64_t seed) {
  const auto dtype = parse_dtype(m.dtype, "model.dtype");
  const auto device = parse_device(m.device, "model.device");
  if (!m.path.empty()) {
    auto model = load_causal_lm(m.path, {dtype, device});
    return model;
  }
  auto config = load_model_config(m.config);
  config.dtype = dtype;
  LlamaForCausalLM model(config);
  init_weights(*model, m.init_std, seed);
  model->to(device, dtype);
  return model;
}

}  // namespace flywheel
