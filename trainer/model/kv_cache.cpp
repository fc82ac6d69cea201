#include "trainer/model/kv_cache.h"

#include <optional>

#include "trainer/model/causal_attention_cpu.h"

namespace flywheel {

KVCache::KVCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads, int64_t capacity,
                 int64_t head_dim, torch::TensorOptions options)
    : capacity_(capacity) {
  TORCH_CHECK(num_layers > 0 && batch > 0 && capacity > 0, "KVCache: sizes must be positive");
  for (int64_t l = 0; l < num_layers; ++l) {
    keys_.push_back(torch::empty({batch, num_kv_heads, capacity, head_dim}, options));
    values_.push_back(torch::empty({batch, num_kv_heads, capacity, head_dim}, options));
  }
}

torch::Tensor grouped_attention(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& mask) {
  if (!mask.defined() && causal_attention_cpu_applies(q, k, v))
    return causal_attention_cpu(q, k, v);
  // Fused attention (flash / memory-efficient kernels, on the CPU too); enable_gqa reads each
  // KV head for its group of query heads without copying it H / K times.
  std::optional<torch::Tensor> attn_mask;
  if (mask.defined()) attn_mask = mask;
  return at::scaled_dot_product_attention(q, k, v, attn_mask, /*dropout_p=*/0.0,
                                          /*is_causal=*/!mask.defined(), /*scale=*/std::nullopt,
                                          /*enable_gqa=*/q.size(1) != k.size(1));
}

torch::Tensor KVCache::attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& mask) {
  TORCH_CHECK(layer >= 0 && layer < static_cast<int64_t>(keys_.size()), "KVCache: bad layer ",
              layer);
  const auto T = k.size(2);
  TORCH_CHECK(length_ + T <= capacity_, "KVCache: ", length_, " + ", T,
              " tokens exceed the capacity ", capacity_);
  keys_[layer].narrow(2, length_, T).copy_(k);
  values_[layer].narrow(2, length_, T).copy_(v);
  return grouped_attention(q, keys_[layer].narrow(2, 0, length_ + T),
                           values_[layer].narrow(2, 0, length_ + T), mask);
}

void KVCache::advance(int64_t t) {
  TORCH_CHECK(length_ + t <= capacity_, "KVCache: advance past capacity");
  length_ += t;
}

}  // namespace flywheel
