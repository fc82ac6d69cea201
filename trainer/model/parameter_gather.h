// Where a model's forward asks for its parameters, for parameters that are not kept whole
// between uses (ZeRO-3, trainer/optim/param_shards.h). A model without one holds its
// parameters whole, as usual.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace flywheel {

class ParameterGather {
 public:
  virtual ~ParameterGather() = default;
  // Around the embedding lookup, whose backward does not read the table.
  virtual void begin_embedding() = 0;
  virtual void end_embedding() = 0;
  // Around decoder layer i. end_layer passes h, the layer's output, through an autograd node
  // that fetches the layer's parameters again for its backward.
  virtual void begin_layer(int64_t layer) = 0;
  virtual torch::Tensor end_layer(int64_t layer, const torch::Tensor& h) = 0;
  // Before the final norm: it and the heads stay available until their gradients are in.
  virtual void begin_head() = 0;
};

}  // namespace flywheel
