// The rollout engine's KV memory, and the attention a forward does over it.
//   N = the forward's tokens, laid end to end; K = KV heads; L = slot length; D = head dim
// Every sequence lives in a slot of up to L tokens; every layer's keys and values for all the
// slots are preallocated as [slots, K, L, D] from a budget. Slots are handed out lowest
// first, so the running sequences stay packed at the front and one batched attention over a
// prefix of the slots serves every decoding sequence at once. "No room" is an empty
// optional, which the scheduler waits on.
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

  int64_t slots() const { return static_cast<int64_t>(used_.size()); }
  int64_t slot_length() const { return slot_length_; }
  int64_t free_slots() const { return free_; }
  std::optional<int64_t> allocate();  // the lowest free slot; empty when none is free
  void release(int64_t slot);

  // Copies positions [0, length) of slot `from` into slot `to` in every layer (the samples of
  // one prompt share its prefill).
  void copy_prefix(int64_t from, int64_t to, int64_t length);

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

// The attention of one forward over KVSlots (passed to the decoder as its cache). Spans of one
// token (decoding) attend together in one batched call over the slots [0, last decoding slot];
// longer spans (prompts, whole or in chunks) each attend alone, causally, over their cached
// tokens and themselves.
class SlotAttention final : public AttentionCache {
 public:
  SlotAttention(KVSlots& slots, std::vector<SlotSpan> spans, const torch::Device& device);

  int64_t length() const override { return 0; }  // every span brings its own positions
  // q [1, H, N, D], k/v [1, K, N, D] -> [1, H, N, D]
  torch::Tensor attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                       const torch::Tensor& v, const torch::Tensor& mask) override;
  void advance(int64_t /*t*/) override {}

 private:
  KVSlots& slots_;
  std::vector<SlotSpan> spans_;            // the longer ones
  torch::Tensor decode_slot_;              // [B] int64, the decoding spans' slots
  torch::Tensor decode_position_;          // [B] int64, where their new token goes
  torch::Tensor decode_offset_;            // [B] int64, where it is in the forward
  torch::Tensor decode_mask_;              // [R, 1, 1, S] bool over slots [0, R), S = longest + 1
  std::vector<torch::Tensor> span_masks_;  // per longer span, or undefined when it starts at 0
};

}  // namespace flywheel
