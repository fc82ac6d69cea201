// The rollout engine's steps that only decode, at fixed shapes, so that on a GPU each shape
// is a CUDA graph captured once and replayed.
//   R = decoding rows (slots [0, R)); B = R rounded up to a bucket; L = slot length
// A step of R rows runs as B rows (fillers beyond R, as in rollout/kv_slots.h) attending all
// L positions of their slots under the mask their positions give, so its shapes depend on B
// alone and its inputs are two device buffers, ids and positions [B]. Buckets are 1, 2, 4, 8,
// 16, 32, then every multiple of 32, up to the number of slots.
//
// Captured graphs read the parameters and the KV slots at the addresses they had at capture.
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

#include "rollout/kv_slots.h"
#include "trainer/model/llama.h"

namespace flywheel {

// The hidden states [N, C] of a forward over KVSlots: tokens ids/positions [N] (host), the
// first R of them one per slot [0, R) (rollout/kv_slots.h), then the spans; `keys` as
// SlotAttention takes it.
torch::Tensor slot_forward(LlamaForCausalLM& model, KVSlots& slots, const std::vector<int64_t>& ids,
                           const std::vector<int64_t>& positions, int64_t rows, int64_t keys,
                           std::vector<SlotSpan> spans);

class DecodeStep {
 public:
  // capture: record each bucket as a CUDA graph (the model must be on a GPU).
  DecodeStep(LlamaForCausalLM& model, KVSlots& slots, bool capture);
  ~DecodeStep();
  DecodeStep(const DecodeStep&) = delete;
  DecodeStep& operator=(const DecodeStep&) = delete;

  static std::vector<int64_t> buckets(int64_t slots);
  // The logits [B, V] of a step over slots [0, R) (its rows first): ids and positions [R]
  // (fillers already at L - 1 where a slot decodes nothing). Valid until the next run: on a
  // GPU they are the graph's output, which its next replay overwrites.
  torch::Tensor run(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions);
  int64_t captures() const { return captures_; }  // graphs recorded so far

 private:
  struct Graphs;
  torch::Tensor forward(int64_t bucket);  // the fixed-shape step over the buffers -> [B, V]
  torch::Tensor replay(int64_t bucket);   // forward() as a CUDA graph (CUDA builds only)
  std::vector<void*> parameter_addresses() const;

  LlamaForCausalLM model_;
  KVSlots& slots_;
  std::vector<int64_t> buckets_;
  torch::Tensor ids_, positions_;   // [largest bucket] int64 on the model's device
  std::unique_ptr<Graphs> graphs_;  // null without capture
  int64_t captures_ = 0;
};

}  // namespace flywheel
