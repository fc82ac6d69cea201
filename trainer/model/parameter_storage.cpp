#include "trainer/model/parameter_storage.h"

#include <c10/core/StorageImpl.h>

namespace flywheel {
namespace {

thread_local int deferred_depth = 0;

}  // namespace

void release_storage(const torch::Tensor& t) {
  auto* storage = t.storage().unsafeGetStorageImpl();
  storage->set_data_ptr_noswap(at::DataPtr(nullptr, t.device()));
  storage->set_nbytes(0);
}

void restore_storage(const torch::Tensor& t) {
  auto* storage = t.storage().unsafeGetStorageImpl();
  const size_t nbytes = static_cast<size_t>(t.storage_offset() + t.numel()) * t.element_size();
  if (storage->nbytes() >= nbytes) return;
  storage->set_data_ptr_noswap(storage->allocator()->allocate(nbytes));
  storage->set_nbytes(nbytes);
}

bool storage_released(const torch::Tensor& t) {
  return t.numel() > 0 && t.storage().nbytes() == 0;
}

DeferredParameters::DeferredParameters() {
  ++deferred_depth;
}

DeferredParameters::~DeferredParameters() {
  --deferred_depth;
}

torch::Tensor new_parameter(at::IntArrayRef sizes, const torch::TensorOptions& options) {
  auto t = torch::empty(sizes, options);
  if (deferred_depth > 0) release_storage(t);
  return t;
}

}  // namespace flywheel
