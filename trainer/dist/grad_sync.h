// Data-parallel gradient synchronisation, overlapped with backward.
//
// Parameters are grouped into buckets of about `bucket_bytes`, in reverse registration order
// (roughly the order backward produces their gradients). A post-hook on each parameter's
// gradient accumulator marks it ready; once every parameter of a bucket is ready, the bucket's
// gradients are copied into one flat buffer and its all-reduce starts while backward goes on.
// Buckets are launched strictly in index order, so every rank issues the same collectives in
// the same sequence. finish() waits for them and leaves each parameter's .grad as a view of
// the summed buffer.
//
// ZeRO-2 (trainer/optim/zero.h) uses the reduce-to-owner mode instead: each bucket's slice that
// falls in rank r's optimizer shard is reduced to rank r alone, which copies its part into
// its gradient shard; the parameters' .grad are released as soon as their bucket is copied.
//
// Only the last micro-batch of an optimizer step is synchronised (arm() before its backward):
// the earlier ones accumulate locally, as DDP's no_sync() does. The loss is already divided by
// the global normaliser (trainer/train/objective.h), so the gradients are summed, not averaged.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "trainer/dist/communicator.h"

namespace flywheel {

// Reduce-to-owner mode: rank r owns flat elements [r * shard_size, (r + 1) * shard_size) of
// the parameters laid end to end in order; `shard` receives this rank's part (float32).
struct OwnerShards {
  int64_t shard_size = 0;
  torch::Tensor shard;
};

class GradientSync {
 public:
  GradientSync(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes,
               std::optional<OwnerShards> owners = std::nullopt);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // The next backward launches bucket all-reduces as gradients become ready.
  void arm();
  // After that backward (or without one, on a rank that had no data this step): launches what
  // is left — a parameter without a gradient contributes zeros — waits, and sets every
  // parameter's .grad to its slice of the summed buffers (reduce-to-owner mode: fills the
  // shard instead).
  void finish();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> params;   // indices into params_, in order
    std::vector<int64_t> offset;  // of each parameter in flat
    int64_t flat_begin = 0;       // where flat starts in all parameters laid end to end
    torch::Tensor flat;
    size_t ready = 0;
    std::vector<std::unique_ptr<PendingCollective>> pending;
  };
  class ReadyHook;

  void mark_ready(size_t param);
  void launch_ready_buckets();  // in order, as far as complete buckets go
  void launch(Bucket& b);

  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_;  // param index -> bucket
  std::vector<bool> is_ready_;
  std::vector<Bucket> buckets_;
  std::vector<c10::intrusive_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  Communicator& comm_;
  std::optional<OwnerShards> owners_;
  std::mutex mutex_;  // hooks run on the autograd engine's thread
  bool armed_ = false;
  size_t next_launch_ = 0;
};

}  // namespace flywheel
