// Per-layer key/value cache for incremental decoding.
//   B = batch rows, H = KV heads, S = capacity (max cached tokens), D = head dim
// All rows share one write position (`length`); ragged prompts are handled by left padding
// plus the attention mask, so a padded slot is simply never attended to.
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace flywheel {

class KVCache {
 public:
  KVCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads, int64_t capacity,
          int64_t head_dim, torch::TensorOptions options);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }

  // Writes k/v [B, H, T, D] for `layer` at slots [length, length + T) and returns the cached
  // keys/values [B, H, length + T, D] (views into the cache, no copy).
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k,
                                                 const torch::Tensor& v);
  // Called once per forward, after every layer appended its T new tokens.
  void advance(int64_t t);

 private:
  std::vector<torch::Tensor> keys_, values_;  // per layer [B, H, S, D]
  int64_t length_ = 0;
  int64_t capacity_;
};

}  // namespace flywheel
