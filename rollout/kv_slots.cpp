#include "rollout/kv_slots.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

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

int64_t KVSlots::bytes_for(const ModelConfig& config, int64_t slots, int64_t slot_length,
                           torch::Dtype dtype) {
  return slots * 2 * config.num_hidden_layers * config.num_key_value_heads * slot_length *
         config.head_dim * static_cast<int64_t>(c10::elementSize(dtype));
}

int64_t KVSlots::slots_in(const ModelConfig& config, int64_t slot_length, int64_t bytes,
                          torch::Dtype dtype) {
  return bytes / bytes_for(config, 1, slot_length, dtype);
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

void KVSlots::release_all() {
  std::fill(used_.begin(), used_.end(), false);
  free_ = slots();
}

void KVSlots::relocate(int64_t from, int64_t to, int64_t length) {
  TORCH_CHECK(from >= 0 && from < slots() && used_[static_cast<size_t>(from)] && to >= 0 &&
                  to < slots() && !used_[static_cast<size_t>(to)],
              "KVSlots: cannot move slot ", from, " to ", to);
  if (length > 0) copy_prefix(from, to, length);
  used_[static_cast<size_t>(to)] = true;
  used_[static_cast<size_t>(from)] = false;
}

namespace {

// Which keys [1, S] each query at `positions` [T, 1] attends: the ones at or before it, and
// within the window when there is one.
torch::Tensor causal_mask(const torch::Tensor& keys, const torch::Tensor& positions,
                          std::optional<int64_t> window) {
  auto mask = keys <= positions;
  if (window) mask = mask.logical_and(keys > positions - *window);
  return mask;
}

// The rows' attention on the CPU in float32: row r is slot r's newest token. Its key and
// value go into the slot at the row's position; then every row's scores over its slot's
// first `keys` positions in one batched matrix product (each KV head serving its H / K query
// heads in place), masked outside [lo, position] (lo: the window's start) and scaled in one
// pass, one softmax, and one batched product with the values. Three library calls for all
// rows, where the fused attention kernel would be called per row with a block of queries it
// does not have. Fillers (position L - 1) write nothing; their outputs are dropped.
// q [R, H, D], k/v [R, K, D] contiguous -> out [R, H, D] (contiguous).
void attend_rows_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     torch::Tensor& cached_k, torch::Tensor& cached_v,
                     const torch::Tensor& positions, int64_t keys, std::optional<int64_t> window,
                     torch::Tensor& out) {
  const int64_t R = q.size(0), H = q.size(1), D = q.size(2), K = k.size(1), G = H / K;
  const int64_t L = cached_k.size(2);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const int64_t* pp = positions.data_ptr<int64_t>();
  float* ck = cached_k.data_ptr<float>();
  float* cv = cached_v.data_ptr<float>();
  for (int64_t r = 0; r < R; ++r) {
    if (pp[r] == L - 1) continue;
    for (int64_t kh = 0; kh < K; ++kh) {
      std::copy_n(kp + (r * K + kh) * D, D, ck + ((r * K + kh) * L + pp[r]) * D);
      std::copy_n(vp + (r * K + kh) * D, D, cv + ((r * K + kh) * L + pp[r]) * D);
    }
  }
  // [R * K, S, D] views of the slots (slot-major, then head: the two dims merge).
  const auto slot_keys = cached_k.narrow(0, 0, R).narrow(2, 0, keys).view({R * K, keys, D});
  const auto slot_values = cached_v.narrow(0, 0, R).narrow(2, 0, keys).view({R * K, keys, D});
  auto scores = torch::bmm(q.view({R * K, G, D}), slot_keys.transpose(1, 2));  // [R, H, S]
  float* sp = scores.data_ptr<float>();
  const auto grain = std::max<int64_t>(1, 32768 / (H * keys));
  at::parallel_for(0, R, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = sp + r * H * keys;
      const int64_t pos = pp[r];
      if (pos == L - 1) {
        std::fill(row, row + H * keys, 0.0f);
        continue;
      }
      const int64_t lo = window ? std::max<int64_t>(0, pos - *window + 1) : 0;
      for (int64_t h = 0; h < H; ++h) {
        float* sh = row + h * keys;
        std::fill(sh, sh + lo, -std::numeric_limits<float>::infinity());
        for (int64_t s = lo; s <= pos; ++s)
          sh[s] *= scale;
        std::fill(sh + pos + 1, sh + keys, -std::numeric_limits<float>::infinity());
      }
    }
  });
  auto rows = out.view({R * K, G, D});
  torch::bmm_out(rows, scores.softmax(-1), slot_values);
}

}  // namespace

SlotAttention::SlotAttention(KVSlots& slots, torch::Tensor positions, int64_t keys,
                             std::vector<SlotSpan> spans, std::optional<int64_t> sliding_window,
                             bool allow_fused)
    : slots_(slots), window_(sliding_window), spans_(std::move(spans)) {
  if (positions.defined()) {
    rows_ = positions.size(0);
    keys_ = keys;
    TORCH_CHECK(rows_ <= slots.slots() && keys_ > 0 && keys_ <= slots.slot_length(),
                "SlotAttention: ", rows_, " rows over ", keys_, " keys do not fit ", slots.slots(),
                " slots of ", slots.slot_length());
    positions_ = positions;
    fused_ = allow_fused && positions.device().is_cpu() &&
             slots.keys(0).scalar_type() == torch::kFloat32;
    if (!fused_) {
      const auto ints = positions.options();
      rows_index_ = torch::arange(rows_, ints);
      // Fillers sit at L - 1, past every key here: they attend all of them (finite values;
      // their outputs are dropped).
      row_mask_ = causal_mask(torch::arange(keys_, ints).view({1, -1}), positions.view({-1, 1}),
                              sliding_window)
                      .view({rows_, 1, 1, keys_});
    }
  }
  for (const auto& s : spans_) {
    TORCH_CHECK(s.count > 0 && s.start + s.count <= slots.slot_length(), "SlotAttention: span of ",
                s.count, " tokens at ", s.start, " does not fit a slot of ", slots.slot_length());
    // Query i (position start + i) attends keys [0, start + i]; from 0 that is plain causal.
    torch::Tensor mask;
    if (s.start > 0 || sliding_window) {
      const auto device = slots.keys(0).device();
      const auto ints = torch::TensorOptions().dtype(torch::kInt64).device(device);
      mask =
          causal_mask(torch::arange(s.start + s.count, ints).view({1, -1}),
                      torch::arange(s.start, s.start + s.count, ints).view({-1, 1}), sliding_window)
              .view({1, 1, s.count, s.start + s.count});
    }
    span_masks_.push_back(mask);
  }
}

torch::Tensor SlotAttention::attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& /*mask*/) {
  auto& cached_k = slots_.keys(layer);  // [slots, K, L, D]
  auto& cached_v = slots_.values(layer);
  // The output as [1, N, H, D] rows (returned transposed), which the decoder's output
  // projection then reads without a copy.
  auto out = torch::empty({1, q.size(2), q.size(1), q.size(3)}, q.options());
  const auto heads_out = out.transpose(1, 2);  // [1, H, N, D]
  if (rows_ > 0 && fused_) {
    auto rows = out[0].narrow(0, 0, rows_);  // [R, H, D]
    attend_rows_cpu(q[0].narrow(1, 0, rows_).transpose(0, 1).contiguous(),
                    k[0].narrow(1, 0, rows_).transpose(0, 1).contiguous(),
                    v[0].narrow(1, 0, rows_).transpose(0, 1).contiguous(), cached_k, cached_v,
                    positions_, keys_, window_, rows);
  } else if (rows_ > 0) {
    // Row r's key and value [R, K, D] into slot r at its position.
    cached_k.index_put_({rows_index_, Slice(), positions_},
                        k[0].narrow(1, 0, rows_).transpose(0, 1));
    cached_v.index_put_({rows_index_, Slice(), positions_},
                        v[0].narrow(1, 0, rows_).transpose(0, 1));
    // Each row a batch entry of one query [R, H, 1, D] over its slot's first keys.
    const auto o = grouped_attention(q.narrow(2, 0, rows_).permute({2, 1, 0, 3}),
                                     cached_k.narrow(0, 0, rows_).narrow(2, 0, keys_),
                                     cached_v.narrow(0, 0, rows_).narrow(2, 0, keys_), row_mask_);
    heads_out.narrow(2, 0, rows_).copy_(o.permute({2, 1, 0, 3}));
  }
  for (size_t i = 0; i < spans_.size(); ++i) {
    const auto& s = spans_[i];
    auto slot_k = cached_k[s.slot], slot_v = cached_v[s.slot];  // [K, L, D]
    slot_k.narrow(1, s.start, s.count).copy_(k[0].narrow(1, s.offset, s.count));
    slot_v.narrow(1, s.start, s.count).copy_(v[0].narrow(1, s.offset, s.count));
    const auto S = s.start + s.count;
    heads_out.narrow(2, s.offset, s.count)
        .copy_(grouped_attention(q.narrow(2, s.offset, s.count),
                                 slot_k.narrow(1, 0, S).unsqueeze(0),
                                 slot_v.narrow(1, 0, S).unsqueeze(0), span_masks_[i]));
  }
  return heads_out;
}

}  // namespace flywheel
