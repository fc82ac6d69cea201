// Activation checkpointing: run a block without keeping its intermediate activations, and run
// it again in backward to get them (LibTorch's C++ API has no torch.utils.checkpoint).
//
// The block's parameters are inputs of the checkpoint node, so their gradients flow through
// the ordinary graph (and its gradient-accumulation hooks, trainer/dist/grad_sync.h) rather
// than being accumulated by a nested backward. The random-number state of the input's device
// is saved at the forward and restored for the replay, so a block that draws random numbers
// (dropout) recomputes exactly what it computed the first time.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace flywheel {

// block(x) with only x kept for backward. `params`: every tensor the block uses that needs a
// gradient, besides x. Anything else the block captures (rotary tables, masks) must stay
// unchanged until backward.
torch::Tensor checkpointed(std::function<torch::Tensor(const torch::Tensor&)> block,
                           const torch::Tensor& x, const std::vector<torch::Tensor>& params);

}  // namespace flywheel
