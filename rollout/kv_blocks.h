// The rollout engine's KV memory, in blocks, and the attention a forward does over it.
//   N = the forward's tokens, laid end to end; K = KV heads; P = blocks; B = tokens a block;
//   D = head dim; R = decoding rows; T = blocks a row's table lists
// Every layer's keys and values are preallocated from a budget as [K, P + 1, B, D] (stored
// transposed within each block for the CPU kernels, rollout/cpu_attention.h, where they run):
// P blocks of B positions that sequences take as they grow (a block table per sequence: position p
// is at offset p % B of its table's block p / B), and one more, the scratch block, which nobody
// owns: padding rows write there and tables are padded with it. A sequence holds blocks only
// for the tokens it has, so memory goes to what is generated, not to what might be; "no room"
// is an empty optional, which the scheduler answers by waiting or by preempting a sequence
// (rollout/scheduler.h). Blocks are counted: the samples of one prompt share its full blocks.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "rollout/cpu_attention.h"
#include "trainer/model/kv_cache.h"
#include "trainer/model/model_config.h"

namespace flywheel {

class KVBlocks {
 public:
  // `options`: the model's dtype and device; a sequence holds at most max_seq_len tokens.
  KVBlocks(const ModelConfig& config, int64_t blocks, int64_t block_tokens, int64_t max_seq_len,
           torch::TensorOptions options);
  // How many blocks of `block_tokens` tokens `bytes` hold for this model in `dtype`, the
  // scratch block set aside.
  static int64_t blocks_in(const ModelConfig& config, int64_t block_tokens, int64_t bytes,
                           torch::Dtype dtype);
  // The bytes of `blocks` blocks and the scratch block.
  static int64_t bytes_for(const ModelConfig& config, int64_t blocks, int64_t block_tokens,
                           torch::Dtype dtype);
  static int64_t blocks_for(int64_t tokens, int64_t block_tokens) {
    return (tokens + block_tokens - 1) / block_tokens;
  }

  int64_t blocks() const { return static_cast<int64_t>(refs_.size()); }  // scratch not counted
  int64_t block_tokens() const { return block_tokens_; }
  int64_t max_seq_len() const { return max_seq_len_; }
  int64_t table_width() const { return blocks_for(max_seq_len_, block_tokens_); }
  int64_t scratch() const { return blocks(); }  // the block padding rows and tables use
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }

  std::optional<int64_t> allocate();  // a free block, held once; empty when none is free
  int64_t holders(int64_t block) const { return refs_[static_cast<size_t>(block)]; }
  void share(int64_t block);    // one more holder
  void release(int64_t block);  // one holder fewer; free when none is left
  void release_all();           // every block free (a new generate() call)
  // Copies block `from`'s keys and values into `to` in every layer.
  void copy_block(int64_t from, int64_t to);

  // A layer's keys and values as [K, P + 1, B, D] (views of what is stored).
  torch::Tensor keys(int64_t layer) const;
  torch::Tensor values(int64_t layer) const;
  // Whether they are stored as the CPU kernels read them (float32 on a CPU they run on).
  bool kernel_layout() const { return kernel_layout_; }
  // Layer `layer` for rollout/cpu_attention.h; needs kernel_layout().
  cpu_attention::Pool cpu_pool(int64_t layer, std::optional<int64_t> window);

 private:
  std::vector<torch::Tensor> keys_, values_;  // per layer, as stored
  bool kernel_layout_ = false;
  bool values_transposed_ = false;  // stored [K, P + 1, D, B] (the kernel layout when D = 8)
  std::vector<int32_t> refs_;       // per block: its holders
  std::vector<int64_t> free_;       // a stack, lowest block on top
  int64_t block_tokens_, max_seq_len_;
};

// Part of one forward: `count` new tokens of a sequence with `start` tokens cached already,
// at `offset` in the forward's N tokens, whose block table (covering start + count) is
// `blocks`.
struct BlockSpan {
  std::vector<int64_t> blocks;
  int64_t start = 0;
  int64_t count = 0;
  int64_t offset = 0;
};

// The attention of one forward over KVBlocks (passed to the decoder as its cache). The
// forward's first R tokens are rows, one token each of R sequences at their positions, with
// their block tables [R, T] (padded with the scratch block). Longer spans (prompts, whole or in
// chunks, and sequences recomputed after preemption) follow, each over its cached tokens and
// itself, causally. A model with a sliding window attends only that far back. On a CPU the
// kernels run on (KVBlocks::kernel_layout()), every token goes through rollout/cpu_attention.h,
// spans token by token; elsewhere the rows attend together in one batched call over their
// blocks gathered (first `keys` positions), and each span in one call over its own.
class BlockAttention final : public AttentionCache {
 public:
  // positions [R] and tables [R, T] int64 on the model's device (undefined when R = 0), with
  // T * B >= keys > every row's position. allow_fused = false: the gathering path even where
  // the CPU kernel would run (what a CUDA graph captures, tested on the CPU).
  BlockAttention(KVBlocks& blocks, torch::Tensor positions, torch::Tensor tables, int64_t keys,
                 std::vector<BlockSpan> spans, std::optional<int64_t> sliding_window,
                 bool allow_fused = true);

  int64_t length() const override { return 0; }  // every token brings its own position
  bool masks_itself() const override { return true; }
  // q [1, H, N, D], k/v [1, K, N, D] -> [1, H, N, D]
  torch::Tensor attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                       const torch::Tensor& v, const torch::Tensor& mask) override;
  void advance(int64_t /*t*/) override {}

 private:
  KVBlocks& blocks_;
  bool kernel_;  // every token attends through rollout/cpu_attention.h, reading blocks in place
  int64_t rows_ = 0, keys_ = 0;
  torch::Tensor positions_;     // [R] int64
  torch::Tensor tables_;        // [R, T] int64
  torch::Tensor gather_;        // [R * ceil(keys / B)]: the blocks the rows read, in order
  torch::Tensor write_block_;   // [R]: where each row's key and value go
  torch::Tensor write_offset_;  // [R]
  torch::Tensor row_mask_;      // [R, 1, 1, keys] bool
  std::optional<int64_t> window_;
  std::vector<BlockSpan> spans_;            // the longer ones
  std::vector<cpu_attention::Run> runs_;    // with kernel_: the rows', then the spans' tokens
  std::vector<torch::Tensor> span_blocks_;  // per span: its table [ceil(S / B)]
  std::vector<torch::Tensor> span_write_;   // per span: [2, count] block and offset
  std::vector<torch::Tensor> span_masks_;   // per span, or undefined when plain causal
};

}  // namespace flywheel
