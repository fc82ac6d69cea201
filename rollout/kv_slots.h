// The rollout engine's KV memory, and the attention a forward does over it.
//   N = the forward's tokens, laid end to end; K = KV heads; L = slot length; D = head dim
// Every sequence lives in a slot of up to L tokens; every layer's keys and values for all the
// slots are preallocated as [slots, K, L, D] from a budget. Slots are handed out lowest
// first, and when a sequence leaves the scheduler moves the one in the highest slot into the
// hole (relocate), so the slots in use are always [0, used): the decoding sequences are one
// block at the front, which one batched attention serves without gathering any cache. "No
// room" is an empty optional, which the scheduler waits on.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "trainer/model/kv_cache.h"
#include "trainer/model/model_config.h"

namespace flywheel {

class KVSlots {
 public:
  // `options`: the model's dtype and device.
  KVSlots(const ModelConfig& config, int64_t slots, int64_t slot_length,
          torch::TensorOptions options);
  // How many slots of `slot_length` tokens `bytes` hold for this model in `dtype`.
  static int64_t slots_in(const ModelConfig& config, int64_t slot_length, int64_t bytes,
                          torch::Dtype dtype);
  // The bytes of `slots` slots of `slot_length` tokens.
  static int64_t bytes_for(const ModelConfig& config, int64_t slots, int64_t slot_length,
                           torch::Dtype dtype);

  int64_t slots() const { return static_cast<int64_t>(used_.size()); }
  int64_t slot_length() const { return slot_length_; }
  int64_t free_slots() const { return free_; }
  std::optional<int64_t> allocate();  // the lowest free slot; empty when none is free
  void release(int64_t slot);
  void release_all();  // every slot free (a new generate() call; the last may have thrown)

  // Copies positions [0, length) of slot `from` into slot `to` in every layer (the samples of
  // one prompt share its prefill).
  void copy_prefix(int64_t from, int64_t to, int64_t length);
  // Moves a sequence of `length` cached tokens from slot `from` (in use) to the free slot `to`;
  // `from` is free afterwards.
  void relocate(int64_t from, int64_t to, int64_t length);

  torch::Tensor& keys(int64_t layer) { return keys_[static_cast<size_t>(layer)]; }
  torch::Tensor& values(int64_t layer) { return values_[static_cast<size_t>(layer)]; }

 private:
  std::vector<torch::Tensor> keys_, values_;  // per layer [slots, K, L, D]
  std::vector<bool> used_;
  int64_t free_;
  int64_t slot_length_;
};

// Part of one forward: `count` new tokens of the sequence in `slot`, which has `start` tokens
// cached already, at `offset` in the forward's N tokens.
struct SlotSpan {
  int64_t slot = 0;
  int64_t start = 0;
  int64_t count = 0;
  int64_t offset = 0;
};

// The attention of one forward over KVSlots (passed to the decoder as its cache). The
// forward's first R tokens are one each for slots [0, R), in slot order: the decoding
// sequences' new tokens, each at its position; rows of slots that decode nothing this step
// are fillers at position L - 1, which no real token ever takes (a slot holds prompt + new
// tokens, and the last one sampled is never fed back), so what they write there is never read;
// their outputs are dropped. They attend together in one batched call over
// the slots' first `keys` positions, with no copy of the cache. Longer spans (prompts, whole
// or in chunks) follow, each attending alone, causally, over its cached tokens and itself.
// A model with a sliding window attends only that far back.
class SlotAttention final : public AttentionCache {
 public:
  // positions: [R] int64 on the model's device (undefined when R = 0); keys > every real
  // row's position; spans' offsets are where they are in the forward (from R on). Float32
  // rows on the CPU attend through a fused kernel unless `allow_fused` is false (then they
  // take the batched SDPA call a GPU takes).
  SlotAttention(KVSlots& slots, torch::Tensor positions, int64_t keys, std::vector<SlotSpan> spans,
                std::optional<int64_t> sliding_window, bool allow_fused = true);

  int64_t length() const override { return 0; }  // every token brings its own position
  bool masks_itself() const override { return true; }
  // q [1, H, N, D], k/v [1, K, N, D] -> [1, H, N, D]
  torch::Tensor attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                       const torch::Tensor& v, const torch::Tensor& mask) override;
  void advance(int64_t /*t*/) override {}

 private:
  KVSlots& slots_;
  int64_t rows_ = 0, keys_ = 0;
  torch::Tensor rows_index_;  // [R] int64: arange(R)
  torch::Tensor positions_;   // [R] int64
  torch::Tensor row_mask_;    // [R, 1, 1, keys] bool
  bool fused_ = false;        // the rows attend through attend_rows_cpu
  std::optional<int64_t> window_;
  std::vector<SlotSpan> spans_;            // the longer ones
  std::vector<torch::Tensor> span_masks_;  // per span, or undefined when plain causal
};

}  // namespace flywheel
