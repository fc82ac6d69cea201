// The rollout engine's steps that only decode, at fixed shapes, so that on a GPU each shape
// is a CUDA graph captured once and replayed.
//   R = decoding rows; B = R rounded up to a bucket; S = the step's longest row rounded up to a
//   key bucket; T = table entries
// A step of R rows runs as B rows (fillers beyond R, at position 0 with tables of nothing but
// the scratch block, rollout/kv_blocks.h) attending the first S positions of their tables under
// the mask their positions give, so its shapes depend on (B, S) alone and its inputs are three
// device buffers, ids and positions [B] and tables [B, T]. Row buckets are 1, 2, 4, 8, 16, 32,
// then every multiple of 32, up to the most sequences the engine runs at once; key buckets are
// powers of two from 16 blocks' worth up to the longest sequence: the blocks a step gathers
// (SDPA reads them contiguous) grow with its longest row, not with the model's context.
//
// Captured graphs read the parameters and the KV blocks at the addresses they had at capture.
// The trainer's optimizer updates parameters in place, so a graph sees new weights with no
// copy; if any parameter's storage moved (a model reloaded, or re-sharded), run() notices and
// captures again.
//
// On the CPU the same fixed-shape steps run eagerly (no graphs): that is how the tests check,
// without a GPU, what the graphs capture.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "rollout/kv_blocks.h"
#include "trainer/model/llama.h"

namespace flywheel {

// The hidden states [N, C] of a forward over KVBlocks: tokens ids/positions [N] (host), the
// first R of them rows with block tables [R, T] (host, row-major), then the spans; `keys` as
// BlockAttention takes it.
torch::Tensor block_forward(LlamaForCausalLM& model, KVBlocks& blocks,
                            const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                            int64_t rows, const std::vector<int64_t>& tables, int64_t keys,
                            std::vector<BlockSpan> spans);

class DecodeStep {
 public:
  // capture: record each bucket as a CUDA graph (the model must be on a GPU).
  // rows: the most a step has.
  DecodeStep(LlamaForCausalLM& model, KVBlocks& blocks, int64_t rows, bool capture);
  ~DecodeStep();
  DecodeStep(const DecodeStep&) = delete;
  DecodeStep& operator=(const DecodeStep&) = delete;

  static std::vector<int64_t> buckets(int64_t rows);
  // The key bucket of a step whose longest row has `keys` positions.
  int64_t key_bucket(int64_t keys) const;
  // The logits [B, V] of a step (its R rows first): ids and positions [R], tables [R, T].
  // Valid until the next run: on a GPU they are the graph's output, which its next replay
  // overwrites.
  torch::Tensor run(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                    const std::vector<int64_t>& tables);
  int64_t captures() const { return captures_; }  // graphs recorded so far

 private:
  struct Graphs;
  // The fixed-shape step over the buffers -> [B, V].
  torch::Tensor forward(int64_t bucket, int64_t keys);
  torch::Tensor replay(int64_t bucket, int64_t keys);  // forward() as a CUDA graph (CUDA only)
  std::vector<void*> parameter_addresses() const;

  LlamaForCausalLM model_;
  KVBlocks& blocks_;
  std::vector<int64_t> buckets_;
  torch::Tensor ids_, positions_;   // [largest bucket] int64 on the model's device
  torch::Tensor tables_;            // [largest bucket, T] int64 on the model's device
  std::unique_ptr<Graphs> graphs_;  // null without capture
  int64_t captures_ = 0;
};

}  // namespace flywheel
