// A forward over a right-padded batch whose rows begin with the same tokens (a prompt's samples
// in RL, a DPO pair's prompt) computes each shared prefix once. Attention is causal, so a
// token's hidden states depend only on the tokens up to it: rows that agree up to position t
// agree in every layer there. The batch's distinct prefixes form a tree whose nodes are the only
// tokens the projections, MLPs and norms see ([1, N] rather than [R, T], padding gone too);
// attention gathers each row's nodes back into rows, attends as the plain forward does (causal),
// and takes each node's output from the first row that reaches it. The gathers' backward sums
// the gradients of the rows sharing a node: values and gradients are the plain forward's up to
// float rounding. The attention is plain causal: a model with a sliding window keeps whole rows.
//   R = rows; T = padded length; N = nodes (distinct prefixes); H/K = query/KV heads; D = head dim
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <utility>

#include "trainer/model/kv_cache.h"

namespace flywheel {

struct PrefixTree {
  torch::Tensor tokens;     // [1, N] int64: each node's token
  torch::Tensor positions;  // [1, N] int64: its depth, the position it has in its rows
  torch::Tensor nodes;      // [R * T] int64: row r's node at position t (node 0 on padding)
  torch::Tensor first;      // [N] int64: r * T + t where the node first appears
  int64_t rows = 0, length = 0;

  int64_t size() const { return tokens.size(1); }
  // hidden [1, N, C] -> [R, T, C], the plain forward's layout (padding: node 0's values).
  torch::Tensor to_rows(const torch::Tensor& hidden) const;
};

// The tree of a right-padded batch (collate()'s: each row's tokens from position 0, positions
// 0..len-1): input_ids and attention_mask [R, T], read on the CPU; the tensors are put on
// input_ids' device.
PrefixTree prefix_tree(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

// Attention over a PrefixTree's nodes (passed to the decoder as its cache, with the tree's tokens
// and positions as the input). Keeps nothing between forwards, so activation checkpointing
// replays layers through a copy.
class PrefixTreeAttention final : public AttentionCache {
 public:
  explicit PrefixTreeAttention(PrefixTree tree) : tree_(std::move(tree)) {}
  int64_t length() const override { return 0; }
  // q [1, H, N, D], k/v [1, K, N, D] -> [1, H, N, D].
  torch::Tensor attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                       const torch::Tensor& v, const torch::Tensor& mask) override;
  void advance(int64_t) override {}
  bool masks_itself() const override { return true; }
  std::shared_ptr<AttentionCache> replay_copy() const override {
    return std::make_shared<PrefixTreeAttention>(tree_);
  }

 private:
  PrefixTree tree_;  // its tensors shared with the caller's
};

}  // namespace flywheel
