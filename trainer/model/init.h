// Fresh weights for a model built from a config (no checkpoint): Hugging Face's Llama
// initialisation — linear and embedding weights normal(0, std), biases zero, norm weights one.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace flywheel {

void init_weights(torch::nn::Module& module, double std, uint64_t seed);

}  // namespace flywheel
