// The rollout engine's decode step for a float32 model on the CPU: the whole forward of the
// decoding rows, embedding to logits, as one pass per thread with no LibTorch call inside.
//   R = decoding rows; T = block table entries (rollout/kv_blocks.h); C = hidden; V = vocabulary
//
// At decoding's small shapes a step built from ATen calls costs its calls, not its arithmetic:
// a 64-row step of stories260K is ~40 MFLOP, a fraction of a millisecond on two cores, but it
// took 1.7 ms in ~150 calls, each a parallel region whose threads meet at a barrier. Rows do
// not interact until sampling (each attends only to its own blocks), so here each thread takes a
// block of rows through every layer alone: one parallel region per step, no barrier inside.
//
// Activations are kept feature-major ([features, rows], rows padded to a multiple of 16) so
// that every product x W^T reads W = [out, in] as the trainer stores it, one weight broadcast
// against 16 rows at a time: the engine's "no parameter copy" holds, and an optimizer step is
// seen by the next step as it is.
//
// The arithmetic is the composed forward's in float32, except for reduction order (RMSNorm's
// sum, the dot products) and a polynomial exp (relative error ~1e-7) in softmax and SiLU:
// results agree with the composed path to float32 rounding (tests/engine_test.cpp), not bit for
// bit. Steps that also compute a prompt take the composed path, so a sequence's logits can
// differ at that rounding with what else is running (as with the GPU's graphs); how rows are
// split among threads changes nothing.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "rollout/kv_blocks.h"
#include "trainer/model/llama.h"

namespace flywheel {

class CpuDecodeStep {
 public:
  // Whether `model` can take this step: float32 parameters on the CPU, not sharded (and the
  // engine's KV blocks must be laid out for rollout/cpu_attention.h).
  static bool applies(const LlamaForCausalLM& model);

  CpuDecodeStep(LlamaForCausalLM& model, KVBlocks& blocks);

  // Whether a step of `rows` rows is faster here than on the composed path. The step splits
  // rows over threads, each reading every weight once: a model whose weights do not stay in
  // cache takes it when at least half the threads have a row (see the .cpp for measurements).
  bool worth(int64_t rows) const;

  // The logits [R, V] of one step: ids and positions [R], the rows' block tables [R, T] (each
  // covering its row's position). Valid until the next run, which reuses their memory.
  torch::Tensor run(const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                    const std::vector<int64_t>& tables);

 private:
  LlamaForCausalLM model_;
  KVBlocks& blocks_;
  torch::Tensor cos_, sin_;  // [L, D] float32: the rotary table at every position a sequence has
  int64_t weight_bytes_ = 0;
  torch::Tensor logits_ = torch::empty({0, 0});  // [rows of the largest step, V]
};

}  // namespace flywheel
