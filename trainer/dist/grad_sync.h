// Gradient accumulation in float32 and data-parallel gradient synchronisation, overlapped
// with backward.
//
// A post-hook on each parameter's gradient accumulator runs once per backward, when .grad holds
// that backward's gradient. It moves the gradient out of .grad (which it releases) into a
// float32 buffer, so micro-batches accumulate in float32 whatever the parameters' dtype
// (bfloat16 .grad would round every sum), and the parameter never holds a full-size gradient of
// its own between backwards. Parameters are grouped into buckets of about `bucket_bytes`, in
// reverse registration order (roughly the order backward produces their gradients); each
// bucket is one contiguous range of the parameters laid end to end. Buckets are launched
// strictly in index order, so every rank issues the same collectives in the same sequence.
//
// Two modes:
//   all-reduce (ZeRO stages 0 and 1): every bucket has a persistent float32 buffer that
//     accumulates the micro-batches' gradients. Only a step's last round is synchronised (as
//     DDP's no_sync() does for the others): once a bucket is complete its buffer is summed over
//     ranks while backward goes on. gradients() then views the summed buffers.
//   reduce-to-owner (ZeRO stage 2): there are no full-size buffers. Every round (micro-batch) is
//     synchronised: each gradient is copied into a transient buffer of its bucket as soon as it
//     is ready (releasing .grad), and once the bucket is complete each slice of it that falls in
//     rank r's shard is reduced to rank r, which adds it to its float32 gradient shard. At most
//     kMaxBucketsInFlight buffers travel while one fills, so a rank holds its shard plus three
//     buckets, never the whole gradient.
//   reduce-scatter (ZeRO stage 3): as reduce-to-owner, but the buckets are the units the
//     parameters are sharded by (trainer/optim/param_shards.h), each sharded on its own: a
//     unit's buffer, padded to W equal parts, is reduce-scattered and part r added to rank r's
//     float32 shard. A unit (a whole layer) is much larger than a bucket: one travels while the
//     next fills.
//
// `reduce_dtype` may be bfloat16 to halve the traffic: buffers are converted for the collective
// only; accumulation stays float32. The loss is already divided by the global normaliser
// (trainer/train/objective.h), so gradients are summed, not averaged.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <deque>
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

// Reduce-scatter mode: the units (indices into the parameters), launched in this order (the
// order backward completes them); unit u is laid end to end and padded to W parts of
// ceil(numel / W); this rank adds the first length[u] elements of its part into `shard` at
// offset[u].
struct UnitShards {
  std::vector<std::vector<size_t>> units;
  std::vector<int64_t> offset, length;
  torch::Tensor shard;
};

class GradientSync {
 public:
  GradientSync(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes,
               torch::ScalarType reduce_dtype = torch::kFloat32,
               std::optional<OwnerShards> owners = std::nullopt,
               std::optional<UnitShards> units = std::nullopt);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Whether every micro-batch is a round of its own (reduce-to-owner), or only a step's last.
  bool syncs_every_micro_batch() const { return sharded(); }

  // A round: arm() before a backward whose gradients are to be synchronised, finish() after
  // it. finish() also runs without a backward (a rank with fewer micro-batches than the others
  // this step): every rank must run the same number of rounds. It launches what is left (a
  // parameter without a gradient this round contributes zeros) and waits for all of it.
  void arm();
  void finish();

  // All-reduce mode, after finish(): each parameter's summed gradient, float32, shaped like it.
  const std::vector<torch::Tensor>& gradients() const { return gradients_; }
  // Starts the next step's accumulation from zero (the shard, in reduce-to-owner mode).
  void zero();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct InFlight {
    size_t bucket;
    torch::Tensor buffer;  // what the collective works on (reduce_dtype)
    torch::Tensor part;    // reduce-scatter: this rank's part of it
    std::vector<std::unique_ptr<PendingCollective>> pending;
  };
  struct Bucket {
    std::vector<size_t> params;   // indices into params_, in order
    std::vector<int64_t> offset;  // of each parameter in the bucket
    int64_t numel = 0;
    int64_t padded = 0;      // reduce-scatter: numel rounded up to W equal parts
    int64_t flat_begin = 0;  // where the bucket starts in all parameters laid end to end
    torch::Tensor flat;      // all-reduce mode: float32 accumulator [numel]
    torch::Tensor filling;   // reduce-to-owner mode: this round's gradients as they come in
    size_t ready = 0;
  };
  class ReadyHook;

  // Whether gradients go straight to their owners (no full-size accumulator).
  bool sharded() const { return owners_.has_value() || units_.has_value(); }
  void on_gradient(size_t param);
  void launch_ready_buckets();  // in order, as far as complete buckets go
  void launch(Bucket& b);
  // Reduce-to-owner: parameter `param`'s gradient into b.filling, releasing its .grad.
  void take_gradient(Bucket& b, size_t param);
  void complete(InFlight& f);  // waits for it and takes the result

  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> gradients_;
  std::vector<size_t> bucket_of_;  // param index -> bucket
  std::vector<int64_t> slot_;      // param index -> offset in its bucket
  std::vector<bool> is_ready_;
  std::vector<Bucket> buckets_;
  std::deque<InFlight> in_flight_;
  std::vector<c10::intrusive_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  Communicator& comm_;
  torch::ScalarType reduce_dtype_;
  std::optional<OwnerShards> owners_;
  std::optional<UnitShards> units_;
  std::mutex mutex_;  // hooks run on the autograd engine's thread
  bool armed_ = false;
  size_t next_launch_ = 0;
};

}  // namespace flywheel
