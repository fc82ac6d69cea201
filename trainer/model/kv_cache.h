// Where attention keeps the keys and values of earlier tokens.
//   B = batch rows, H = query heads, K = KV heads, T = new tokens, S = keys attended,
//   D = head dim
// AttentionCache is what the decoder's layers talk to; KVCache is the simple one: one batch
// decoding in lockstep, all rows sharing one write position, ragged prompts handled by left
// padding plus the attention mask. The rollout engine keeps each sequence in KV blocks of its
// own (rollout/kv_blocks.h).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <utility>
#include <vector>

namespace flywheel {

// Scaled dot-product attention of q [B, H, T, D] over k, v [B, K, S, D] (K divides H: each KV
// head serves H / K query heads, read in place, not repeated); mask [B, 1, T, S] bool (true =
// attend), or undefined for plain causal attention with T == S (on float32 CPU tensors,
// trainer/model/causal_attention_cpu.h's kernel). -> [B, H, T, D].
torch::Tensor grouped_attention(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& mask);

class AttentionCache {
 public:
  virtual ~AttentionCache() = default;
  // Tokens cached before this forward, for every row alike (the decoder places the new tokens
  // and builds the mask from it); 0 for a cache whose sequences each have their own length
  // and whose forward brings its own positions.
  virtual int64_t length() const = 0;
  // One layer's attention for this forward's tokens: q [B, H, T, D], k/v [B, K, T, D] (rotary
  // applied), mask as for grouped_attention over the cached and new keys. Stores k/v and
  // returns the output [B, H, T, D].
  virtual torch::Tensor attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& mask) = 0;
  // Called once per forward, after every layer attended its T new tokens.
  virtual void advance(int64_t t) = 0;
  // True when attend() builds its own masks from what it knows of each token, so the decoder
  // need not build one.
  virtual bool masks_itself() const { return false; }
  // For an attend() that keeps nothing between calls (a layout, not a cache): a copy that
  // activation checkpointing keeps to replay layers through in backward, when this one may be
  // gone. Null for a cache, which is never replayed.
  virtual std::shared_ptr<AttentionCache> replay_copy() const { return nullptr; }
};

class KVCache final : public AttentionCache {
 public:
  KVCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads, int64_t capacity,
          int64_t head_dim, torch::TensorOptions options);

  int64_t length() const override { return length_; }
  int64_t capacity() const { return capacity_; }

  // Writes k/v at slots [length, length + T) and attends over [0, length + T).
  torch::Tensor attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                       const torch::Tensor& v, const torch::Tensor& mask) override;
  void advance(int64_t t) override;

 private:
  std::vector<torch::Tensor> keys_, values_;  // per layer [B, K, capacity, D]
  int64_t length_ = 0;
  int64_t capacity_;
};

}  // namespace flywheel
