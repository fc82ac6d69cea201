// Decoding attention over KV blocks (rollout/kv_blocks.h) on the CPU, for the fused decode
// step (rollout/cpu_decode_step.h) and for the rows of a composed forward: one token of one
// sequence at a time, its heads' scores, softmax and weighted sum read straight from the
// sequence's blocks, with no gather. Compiled for AVX-512; callers check available().
//   H = query heads; K = KV heads; D = head dim; B = tokens a block; P1 = blocks + scratch
//
// The blocks are stored for these kernels: keys transposed, [K, P1, D, B], so that sixteen
// positions' scores are D multiply-adds of one query value by sixteen keys' values, with no
// shuffle; values as [K, P1, B, D] when D is a multiple of 16 (a position's D values are whole
// vectors) and transposed too when D = 8 (sixteen positions' weights against one of its 8
// dimensions at a time). Both want B to be a multiple of 16.
#pragma once

#include <cstdint>
#include <vector>

namespace flywheel::cpu_attention {

// One layer's blocks as the kernels see them (layout above).
struct Pool {
  float* keys = nullptr;
  float* values = nullptr;
  int64_t K = 0, P1 = 0, B = 0, D = 0;
  int64_t window = 0;  // 0: none; else the sliding window
};

// Whether this CPU takes these kernels for a head dim and block size: AVX-512; D = 8 or a
// multiple of 16 up to 512; B a multiple of 16.
bool available(int64_t head_dim, int64_t block_tokens);
// Whether values are stored transposed for head dim D (D = 8).
inline bool values_transposed(int64_t head_dim) {
  return head_dim < 16;
}

// Floats of scratch attend() needs for a sequence of up to `max_seq_len` tokens.
int64_t scores_size(int64_t max_seq_len);

// One token at `pos` of the sequence with block table `table`: its key and value k/v [K, D]
// (rotary applied) go into its block, then its queries q [H, D] attend over the sequence's
// positions [lo, pos] (lo: the window's start), into out [H, D]. Feature f of q, k, v and out
// is at [f * stride] (1: contiguous; the fused step's feature-major columns: its row stride).
// k and v null: the token's key and value are in its block already.
// scores: scores_size() floats. next_table/next_pos: the token the caller does next, whose keys
// and values are prefetched meanwhile (next_table null: none).
void attend(const Pool& pool, const int64_t* table, int64_t pos, const float* q, int64_t H,
            const float* k, const float* v, int64_t stride, float* scores, float* out,
            const int64_t* next_table, int64_t next_pos);

// A run of `count` consecutive tokens of one sequence in a forward: tokens [offset, offset +
// count) of it, at positions [start, start + count), with block table `table`.
struct Run {
  const int64_t* table = nullptr;
  int64_t offset = 0, start = 0, count = 0;
};

// The attention of a composed forward's N tokens, all of them in `runs`: q [N, H, D], k/v
// [N, K, D] contiguous (rotary applied); out [N, H, D]. Every token's key and value are
// written first; then each token attends to its sequence's positions up to its own (a prompt's
// attention is causal), tokens spread over LibTorch's threads.
void attend_runs(const Pool& pool, const float* q, const float* k, const float* v, int64_t H,
                 const std::vector<Run>& runs, float* out);

}  // namespace flywheel::cpu_attention
