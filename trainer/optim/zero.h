// ZeRO: AdamW whose state is sharded across data-parallel ranks.
//
// All trainable parameters, in registration order, form one flat vector of N elements
// (FlatLayout). Rank r of W owns the slice [r * S, min((r + 1) * S, N)) with S = ceil(N / W),
// holds the Adam moments for that slice only (float32) — and, for bfloat16 or float16
// parameters, the float32 master weights of that slice — updates only those elements, and the
// updated parameters are then all-gathered so every rank again has the whole model.
//   stage 1: gradients are all-reduced (GradientSync), each rank reads its slice of them;
//   stage 2: every micro-batch's gradients are reduced straight to their owner (GradientSync in
//            reduce-to-owner mode), which adds them to its float32 slice; no rank holds a
//            full-size gradient at any time.
//   stage 3: the parameters themselves are sharded too (trainer/optim/param_shards.h) and each
//            rank owns a slice of every unit instead of one slice of the whole; it updates its
//            slices in place and nothing is gathered after the step.
// What a rank owns is a list of segments (pieces of parameters) laid end to end in its state
// buffers. The update is element for element the one AdamW does (the same adamw_update), so a
// sharded run matches a replicated one up to the order of the gradient-norm sum.
//
// Checkpoints: each rank writes optimizer-shard-R-of-W.safetensors (its segments of both
// moments and of the masters, where each segment lies in the flat vector, and N).
// read_optimizer_state() turns either that or a replicated run's optimizer.safetensors back into
// per-parameter state, so a run resumes at any world size, sharded or not.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "trainer/dist/communicator.h"
#include "trainer/optim/adamw.h"

namespace flywheel {

struct FlatLayout {
  explicit FlatLayout(const std::vector<torch::Tensor>& params);
  std::vector<int64_t> offset;  // of each parameter in the flat vector
  int64_t total = 0;            // N

  // The part of [begin, end) that falls in parameter k, as {offset in k, flat offset, length}.
  struct Piece {
    size_t param;
    int64_t param_offset, flat_offset, length;
  };
  std::vector<Piece> pieces(int64_t begin, int64_t end) const;
  std::vector<int64_t> numel;
};

// Elements [param_offset, param_offset + length) of parameter `param`, at `local` in this
// rank's state buffers.
struct ShardSegment {
  size_t param;
  int64_t param_offset, length, local;
};

class ShardedAdamW {
 public:
  // Stages 1 and 2: this rank's slice of all parameters laid end to end. step() then
  // all-gathers the updated parameters in pieces of about `gather_bytes`.
  ShardedAdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options,
               Communicator& comm, int64_t gather_bytes = 25 << 20);
  // Stage 3: `segments` (local offsets laid end to end), whose current values are `values`
  // (one flat view per segment, in the parameters' dtype); step() updates those views only.
  ShardedAdamW(std::vector<std::pair<std::string, torch::Tensor>> params,
               std::vector<ShardSegment> segments, std::vector<torch::Tensor> values,
               AdamWOptions options, Communicator& comm);

  int64_t shard_size() const { return size_; }  // stages 1-2, S: every rank's slice, padded

  // This rank's part of the summed gradient, float32, its segments end to end. Stage 2's and
  // 3's GradientSync accumulates into it directly; stage 1 fills it from the all-reduced
  // gradients (one per parameter) with take_gradient().
  torch::Tensor gradient_shard() { return grad_; }
  void take_gradient(const std::vector<torch::Tensor>& grads);
  // The masters of this rank's slice again from the parameters (after they were broadcast).
  void reset_masters();

  // The global L2 norm of the gradient (one all-reduce of the slices' squared sums), scaled
  // down to max_norm when above it (max_norm <= 0: measure only). Returns the norm before.
  double clip_grad_norm(double max_norm);
  // AdamW on this rank's segments; at stages 1-2 every rank then gets the updated parameters.
  void step(double lr);
  int64_t steps() const { return steps_; }

  // Writes optimizer-shard-R-of-W.safetensors into dir.
  void save_shard(const std::string& dir) const;
  // Restores from read_optimizer_state()'s per-parameter state.
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& where);

 private:
  void allocate_state();
  void gather_parameters();  // stages 1-2, after the update

  std::vector<std::string> names_;
  std::vector<torch::Tensor> params_;
  std::vector<bool> decay_;
  AdamWOptions options_;
  Communicator& comm_;
  int64_t gather_bytes_;
  FlatLayout layout_;
  int64_t size_ = 0, begin_ = 0, end_ = 0;  // stages 1-2: the slice [begin, end), padded size
  bool gathers_ = false;                    // stages 1-2
  std::vector<ShardSegment> segments_;
  std::vector<torch::Tensor> values_;          // per segment, flat, the parameters' dtype
  int64_t local_ = 0;                          // the segments' total length
  torch::Tensor exp_avg_, exp_avg_sq_, grad_;  // float32 [local]
  torch::Tensor master_;  // float32 [local] for low-precision parameters, else undefined
  int64_t steps_ = 0;
};

// The optimizer state of a checkpoint directory as AdamW::state() names it, whether it was
// written by a replicated run (optimizer.safetensors) or by W sharded ranks
// (optimizer-shard-*-of-W.safetensors). UserError naming the file on anything inconsistent.
std::map<std::string, torch::Tensor> read_optimizer_state(
    const std::string& dir, const std::vector<std::pair<std::string, torch::Tensor>>& params);

}  // namespace flywheel
