#include "rollout/kv_slots.h"

#include <algorithm>

#include "trainer/core/error.h"

namespace flywheel {

using torch::indexing::Slice;

KVSlots::KVSlots(const ModelConfig& config, int64_t slots, int64_t slot_length,
                 torch::TensorOptions options)
    : used_(static_cast<size_t>(slots), false), free_(slots), slot_length_(slot_length) {
  TORCH_CHECK(slots > 0 && slot_length > 0, "KVSlots: sizes must be positive");
  const auto shape =
      std::vector<int64_t>{slots, config.num_key_value_heads, slot_length, config.head_dim};
  // Zeros, not empty: a batched attention reads (and masks) positions no sequence has written,
  // and a masked NaN would still poison the output (its weight is 0, but 0 x NaN is NaN).
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    keys_.push_back(torch::zeros(shape, options));
    values_.push_back(torch::zeros(shape, options));
  }
}

int64_t KVSlots::slots_in(const ModelConfig& config, int64_t slot_length, int64_t bytes,
                          torch::Dtype dtype) {
  const int64_t per_slot = 2 * config.num_hidden_layers * config.num_key_value_heads * slot_length *
                           config.head_dim * static_cast<int64_t>(c10::elementSize(dtype));
  return bytes / per_slot;
}

std::optional<int64_t> KVSlots::allocate() {
  const auto it = std::find(used_.begin(), used_.end(), false);
  if (it == used_.end()) return std::nullopt;
  *it = true;
  --free_;
  return static_cast<int64_t>(it - used_.begin());
}

void KVSlots::release(int64_t slot) {
  TORCH_CHECK(slot >= 0 && slot < slots() && used_[static_cast<size_t>(slot)], "KVSlots: slot ",
              slot, " is not in use");
  used_[static_cast<size_t>(slot)] = false;
  ++free_;
}

void KVSlots::copy_prefix(int64_t from, int64_t to, int64_t length) {
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l][to].narrow(1, 0, length).copy_(keys_[l][from].narrow(1, 0, length));
    values_[l][to].narrow(1, 0, length).copy_(values_[l][from].narrow(1, 0, length));
  }
}

SlotAttention::SlotAttention(KVSlots& slots, std::vector<SlotSpan> spans,
                             const torch::Device& device)
    : slots_(slots) {
  std::vector<int64_t> slot, position, offset;
  int64_t rows = 0, keys = 0;
  for (const auto& s : spans) {
    TORCH_CHECK(s.count > 0 && s.start + s.count <= slots.slot_length(), "SlotAttention: span of ",
                s.count, " tokens at ", s.start, " does not fit a slot of ", slots.slot_length());
    if (s.count == 1) {
      slot.push_back(s.slot);
      position.push_back(s.start);
      offset.push_back(s.offset);
      rows = std::max(rows, s.slot + 1);
      keys = std::max(keys, s.start + 1);
      continue;
    }
    // Query i (position start + i) attends keys [0, start + i]; from 0 that is plain causal.
    torch::Tensor mask;
    if (s.start > 0) {
      const auto q = torch::arange(s.count, torch::kInt64).unsqueeze(1) + s.start;
      const auto k = torch::arange(s.start + s.count, torch::kInt64).unsqueeze(0);
      mask = (k <= q).view({1, 1, s.count, s.start + s.count}).to(device);
    }
    span_masks_.push_back(mask);
    spans_.push_back(s);
  }
  if (slot.empty()) return;
  const auto ints = torch::TensorOptions().dtype(torch::kInt64);
  decode_slot_ = torch::tensor(slot, ints).to(device);
  decode_position_ = torch::tensor(position, ints).to(device);
  decode_offset_ = torch::tensor(offset, ints).to(device);
  // Slots in [0, rows) that are not decoding attend their first key alone, so that no row of
  // the batched call is empty; their outputs are dropped.
  auto mask = torch::zeros({rows, keys}, torch::kBool);
  mask.select(1, 0).fill_(true);
  for (size_t b = 0; b < slot.size(); ++b)
    mask[slot[b]].narrow(0, 0, position[b] + 1).fill_(true);
  decode_mask_ = mask.view({rows, 1, 1, keys}).to(device);
}

torch::Tensor SlotAttention::attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& /*mask*/) {
  auto& cached_k = slots_.keys(layer);    // [slots, K, L, D]
  auto& cached_v = slots_.values(layer);  // [slots, K, L, D]
  auto out = torch::empty_like(q);        // [1, H, N, D]
  if (decode_slot_.defined()) {
    const auto rows = decode_mask_.size(0), keys = decode_mask_.size(3);
    // The new tokens' keys and values [B, K, D] into their slots at their positions.
    cached_k.index_put_({decode_slot_, Slice(), decode_position_},
                        k[0].index_select(1, decode_offset_).transpose(0, 1));
    cached_v.index_put_({decode_slot_, Slice(), decode_position_},
                        v[0].index_select(1, decode_offset_).transpose(0, 1));
    const auto H = q.size(1), D = q.size(3);
    auto queries = torch::zeros({rows, H, 1, D}, q.options());
    queries.index_copy_(0, decode_slot_,
                        q[0].index_select(1, decode_offset_).transpose(0, 1).unsqueeze(2));
    const auto o = grouped_attention(queries, cached_k.narrow(0, 0, rows).narrow(2, 0, keys),
                                     cached_v.narrow(0, 0, rows).narrow(2, 0, keys),
                                     decode_mask_);  // [rows, H, 1, D]
    out[0].index_copy_(1, decode_offset_,
                       o.index_select(0, decode_slot_).squeeze(2).transpose(0, 1));
  }
  for (size_t i = 0; i < spans_.size(); ++i) {
    const auto& s = spans_[i];
    auto slot_k = cached_k[s.slot], slot_v = cached_v[s.slot];  // [K, L, D]
    slot_k.narrow(1, s.start, s.count).copy_(k[0].narrow(1, s.offset, s.count));
    slot_v.narrow(1, s.start, s.count).copy_(v[0].narrow(1, s.offset, s.count));
    const auto S = s.start + s.count;
    out.narrow(2, s.offset, s.count)
        .copy_(grouped_attention(q.narrow(2, s.offset, s.count),
                                 slot_k.narrow(1, 0, S).unsqueeze(0),
                                 slot_v.narrow(1, 0, S).unsqueeze(0), span_masks_[i]));
  }
  return out;
}

}  // namespace flywheel
