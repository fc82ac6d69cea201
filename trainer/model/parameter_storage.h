// Parameters without memory. A ZeRO-3 model (trainer/optim/param_shards.h) keeps each
// parameter registered with its shape, dtype and device while its storage is released: the
// tensor, and every view autograd saved of it, stays the same object, and finds its data again
// once the storage is restored and filled.
#pragma once

#include <torch/torch.h>

namespace flywheel {

// Frees t's storage (t keeps its shape and offset; its data must not be read until restored).
void release_storage(const torch::Tensor& t);
// Gives t's storage memory again (uninitialised) if it was released; a no-op otherwise.
void restore_storage(const torch::Tensor& t);
bool storage_released(const torch::Tensor& t);

// While one lives on this thread, the modules of trainer/model create their parameters with
// their storage released: a model is built at no memory cost, for ZeRO-3 to fill each rank's
// parts of it straight from a checkpoint (trainer/train/model_builder.h). Scoped like
// torch::NoGradGuard; nests.
class DeferredParameters {
 public:
  DeferredParameters();
  ~DeferredParameters();
  DeferredParameters(const DeferredParameters&) = delete;
  DeferredParameters& operator=(const DeferredParameters&) = delete;
};

// A new uninitialised parameter tensor; released at once under DeferredParameters (so building
// a deferred model holds at most one parameter's memory at a time, on any device).
torch::Tensor new_parameter(at::IntArrayRef sizes, const torch::TensorOptions& options);

}  // namespace flywheel
