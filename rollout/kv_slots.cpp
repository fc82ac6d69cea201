#include "rollout/kv_slots.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
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

// The decode kernels' inner loops, in GCC's vector extension so that they run on whole
// vector registers, and compiled three times (AVX-512, AVX2, baseline x86-64) with the best
// one the CPU supports chosen when the program loads.
using Float4 = float __attribute__((vector_size(16)));
using Float8 = float __attribute__((vector_size(32)));
using Double4 = double __attribute__((vector_size(32)));
#define FLYWHEEL_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// out[g * stride + s] = scale * (q_g . keys[s]) for s in [lo, hi], over D floats summed in
// double: the scores carry no rounding of their own beyond the last, which keeps the engine's
// log-probs within float32 rounding of the trainer's forward (tests/engine_test.cpp).
// q [G, D], keys [L, D].
FLYWHEEL_SIMD_CLONES
void score_keys(const float* q, const float* keys, int64_t lo, int64_t hi, int64_t D, int64_t G,
                float scale, float* out, int64_t stride) {
  for (int64_t g = 0; g < G; ++g) {
    const float* qg = q + g * D;
    for (int64_t s = lo; s <= hi; ++s) {
      const float* k = keys + s * D;
      Double4 acc = {};
      int64_t d = 0;
      for (; d + 4 <= D; d += 4) {
        Float4 a, b;
        std::memcpy(&a, qg + d, sizeof(a));
        std::memcpy(&b, k + d, sizeof(b));
        acc += __builtin_convertvector(a, Double4) * __builtin_convertvector(b, Double4);
      }
      double sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
      for (; d < D; ++d)
        sum += static_cast<double>(qg[d]) * k[d];
      out[g * stride + s] = static_cast<float>(sum) * scale;
    }
  }
}

// out[g][d] = sum over s in [lo, hi] of p[g * stride + s] * values[s][d] (values [L, D]),
// 32 columns at a time with their sums kept in registers across the positions.
FLYWHEEL_SIMD_CLONES
void weigh_values(const float* p, const float* values, int64_t lo, int64_t hi, int64_t D, int64_t G,
                  int64_t stride, float* out) {
  for (int64_t g = 0; g < G; ++g) {
    const float* pg = p + g * stride;
    float* og = out + g * D;
    int64_t d0 = 0;
    for (; d0 + 32 <= D; d0 += 32) {
      Float8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (int64_t s = lo; s <= hi; ++s) {
        const float* v = values + s * D + d0;
        Float8 v0, v1, v2, v3;
        std::memcpy(&v0, v, sizeof(v0));
        std::memcpy(&v1, v + 8, sizeof(v1));
        std::memcpy(&v2, v + 16, sizeof(v2));
        std::memcpy(&v3, v + 24, sizeof(v3));
        a0 += pg[s] * v0;
        a1 += pg[s] * v1;
        a2 += pg[s] * v2;
        a3 += pg[s] * v3;
      }
      std::memcpy(og + d0, &a0, sizeof(a0));
      std::memcpy(og + d0 + 8, &a1, sizeof(a1));
      std::memcpy(og + d0 + 16, &a2, sizeof(a2));
      std::memcpy(og + d0 + 24, &a3, sizeof(a3));
    }
    for (; d0 + 8 <= D; d0 += 8) {
      Float8 acc = {};
      for (int64_t s = lo; s <= hi; ++s) {
        Float8 v;
        std::memcpy(&v, values + s * D + d0, sizeof(v));
        acc += pg[s] * v;
      }
      std::memcpy(og + d0, &acc, sizeof(acc));
    }
    for (; d0 < D; ++d0) {
      float acc = 0;
      for (int64_t s = lo; s <= hi; ++s)
        acc += pg[s] * values[s * D + d0];
      og[d0] = acc;
    }
  }
}

// The rows' attention on the CPU in float32: row r is slot r's newest token. Per row and KV
// head, the new key and value go in at the row's position, and that head's H / K query heads
// score the slot's positions [lo, position] alone (lo: the window's start), so a short
// sequence beside long ones costs only its own length; then one softmax over all rows (ATen's
// vectorised exp), then the weighted sums of values. Fillers (position L - 1) do no work and
// get zeros. q [R, H, D], k/v [R, K, D] contiguous -> out [R, H, D].
void attend_rows_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     torch::Tensor& cached_k, torch::Tensor& cached_v,
                     const torch::Tensor& positions, int64_t keys, std::optional<int64_t> window,
                     torch::Tensor& out) {
  const int64_t R = q.size(0), H = q.size(1), D = q.size(2), K = k.size(1), G = H / K;
  const int64_t L = cached_k.size(2);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const int64_t* pp = positions.data_ptr<int64_t>();
  float* ck = cached_k.data_ptr<float>();
  float* cv = cached_v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const auto span = [&](int64_t r) {
    const int64_t pos = pp[r];
    return std::make_pair(window ? std::max<int64_t>(0, pos - *window + 1) : 0, pos);
  };
  // Tasks of (row, KV head), in chunks of about 32k multiply-adds: small steps stay on one
  // thread, where a parallel region would cost more than the work.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, G * keys * D));
  auto scores = torch::empty({R, H, keys}, q.options());  // [R, H, S]
  float* sp = scores.data_ptr<float>();
  at::parallel_for(0, R * K, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r = task / K, kh = task % K;
      float* row = sp + (r * H + kh * G) * keys;  // [G, S]
      if (pp[r] == L - 1) {
        std::fill(row, row + G * keys, 0.0f);
        continue;
      }
      const auto [lo, pos] = span(r);
      float* slot_k = ck + (r * K + kh) * L * D;  // [L, D] of this slot and head
      std::copy_n(kp + (r * K + kh) * D, D, slot_k + pos * D);
      std::copy_n(vp + (r * K + kh) * D, D, cv + ((r * K + kh) * L + pos) * D);
      for (int64_t g = 0; g < G; ++g) {
        float* sg = row + g * keys;
        std::fill(sg, sg + lo, -std::numeric_limits<float>::infinity());
        std::fill(sg + pos + 1, sg + keys, -std::numeric_limits<float>::infinity());
      }
      score_keys(qp + (r * H + kh * G) * D, slot_k, lo, pos, D, G, scale, row, keys);
    }
  });
  const auto probs = scores.softmax(-1);
  const float* pr = probs.data_ptr<float>();
  at::parallel_for(0, R * K, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t r = task / K, kh = task % K;
      float* o = op + (r * H + kh * G) * D;
      if (pp[r] == L - 1) {
        std::fill(o, o + G * D, 0.0f);
        continue;
      }
      const auto [lo, pos] = span(r);
      const float* slot_v = cv + (r * K + kh) * L * D;
      weigh_values(pr + (r * H + kh * G) * keys, slot_v, lo, pos, D, G, keys, o);
    }
  });
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
