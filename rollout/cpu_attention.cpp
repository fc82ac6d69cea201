#include "rollout/cpu_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "trainer/core/simd.h"

namespace flywheel::cpu_attention {
namespace {

int64_t window_start(const Pool& pool, int64_t pos) {
  return pool.window > 0 ? std::max<int64_t>(0, pos - pool.window + 1) : 0;
}

// Head g's part of block `block`: D x B floats.
float* block_of(float* base, const Pool& pool, int64_t g, int64_t block) {
  return base + (g * pool.P1 + block) * pool.B * pool.D;
}

// Starts loading into L2 what head g of a token at `pos` will read. A step reads every running
// sequence's whole cache, more than L2 keeps between steps, in stretches (a head's block) too
// short for the hardware prefetcher to ramp up on.
void prefetch(const Pool& pool, const int64_t* table, int64_t pos, int64_t g) {
  const int64_t lo = window_start(pool, pos), floats = pool.B * pool.D;
  for (int64_t j = lo / pool.B; j <= pos / pool.B; ++j) {
    const float* keys = block_of(pool.keys, pool, g, table[j]);
    const float* values = block_of(pool.values, pool, g, table[j]);
    for (int64_t i = 0; i < floats; i += 16) {
      __builtin_prefetch(keys + i, 0, 2);
      __builtin_prefetch(values + i, 0, 2);
    }
  }
}

// Token `pos`'s key and value k/v [K, D] (feature f at [f * stride]) into its block.
void store_kv(const Pool& pool, const int64_t* table, int64_t pos, const float* k, const float* v,
              int64_t stride) {
  const int64_t D = pool.D, B = pool.B, at = pos % B;
  const bool tv = values_transposed(D);
  for (int64_t g = 0; g < pool.K; ++g) {
    float* keys = block_of(pool.keys, pool, g, table[pos / B]);
    float* values = block_of(pool.values, pool, g, table[pos / B]);
    for (int64_t d = 0; d < D; ++d) {
      keys[d * B + at] = k[(g * D + d) * stride];
      values[tv ? d * B + at : at * D + d] = v[(g * D + d) * stride];
    }
  }
}

}  // namespace

bool available(int64_t head_dim, int64_t block_tokens) {
  return simd::available() && (head_dim == 8 || head_dim % simd::kLanes == 0) && head_dim <= 512 &&
         block_tokens % simd::kLanes == 0;
}

int64_t scores_size(int64_t max_seq_len) {
  return 4 * ((max_seq_len + 2 * simd::kLanes) / simd::kLanes * simd::kLanes);
}

FLYWHEEL_SIMD_BEGIN
using namespace simd;

namespace {

// Positions [lo, end) in chunks of 16 from c0 (lo rounded down to 16), each chunk inside one
// block (B is a multiple of 16): only the first and last chunks hold positions outside
// [lo, end), which they mask. n16: the floats a head's scores take. The functions below that take
// it are inlined into attend(), which holds it in registers: called, they spent a sixth of the
// decode attention's time storing and reloading it.
struct Chunks {
  Chunks(int64_t lo, int64_t end)
      : lo(lo),
        end(end),
        c0(lo / kLanes * kLanes),
        n16((end - c0 + kLanes - 1) / kLanes * kLanes) {}
  bool partial(int64_t t) const { return t < lo || t + kLanes > end; }
  // Lanes of chunk t that are positions in [lo, end).
  auto real(int64_t t) const {
    return lane >= static_cast<float>(lo - t) && lane < static_cast<float>(end - t);
  }
  int64_t lo, end, c0, n16;
  v16 lane = lane_numbers();
};

// Query heads [h0, h0 + NG) of q (feature f at [f * stride]) into qh, times 1 / sqrt(D) and
// log2 e: their products with the keys are then the scores in base 2, which exp2_16 takes.
template <int NG, int64_t QS>
void scaled_queries(const float* q, int64_t h0, int64_t D, int64_t stride, float (&qh)[NG][QS]) {
  const float scale = std::numbers::log2e_v<float> / std::sqrt(static_cast<float>(D));
  for (int i = 0; i < NG; ++i) {
    for (int64_t d = 0; d < D; ++d)
      qh[i][d] = q[((h0 + i) * D + d) * stride] * scale;
  }
}

// Query heads [h0, h0 + NG) of KV head g, which read the same keys: one pass over the positions
// computes all NG heads' scores (each key vector loaded once for NG multiply-adds) into scores
// [NG, n16], and returns their maxima in m. qh [NG, QS]: the heads' scaled_queries. DC: the
// head dim when fixed at compile time (the loops then unroll), else 0. The other arguments are
// attend()'s.
template <int NG, int64_t DC, int64_t QS>
__attribute__((always_inline)) inline void head_scores(const Pool& pool, const int64_t* table,
                                                       const Chunks& c, int64_t g,
                                                       const float (&qh)[NG][QS], float* scores,
                                                       float (&m)[NG]) {
  const int64_t B = pool.B, D = DC > 0 ? DC : pool.D;
  const v16 lowest = splat(-std::numeric_limits<float>::infinity());
  v16 top[NG];
  for (int i = 0; i < NG; ++i)
    top[i] = lowest;
  for (int64_t t = c.c0; t < c.end; t += kLanes) {
    const float* keys = block_of(pool.keys, pool, g, table[t / B]) + t % B;
    v16 acc[NG][2] = {};  // two chains of multiply-adds a head, not one
    for (int64_t d = 0; d < D; d += 2) {
      const v16 k0 = load(keys + d * B), k1 = load(keys + (d + 1) * B);
      for (int i = 0; i < NG; ++i) {
        acc[i][0] += qh[i][d] * k0;
        acc[i][1] += qh[i][d + 1] * k1;
      }
    }
    for (int i = 0; i < NG; ++i) {
      v16 score = acc[i][0] + acc[i][1];
      if (c.partial(t)) score = c.real(t) ? score : lowest;
      top[i] = score > top[i] ? score : top[i];
      store(scores + i * c.n16 + (t - c.c0), score);
    }
  }
  for (int i = 0; i < NG; ++i)
    m[i] = lanes_max(top[i]);
}

// The softmax weights of chunk t for a head whose scores (base 2) peak at m: 2^(score - m), 0
// where masked (exp2_16 clamps -inf to a tiny positive value). Masked lanes still multiply what a
// block holds there: an earlier sequence's values or the pool's zeros, finite, so they add
// exactly 0.
inline v16 softmax_weight(const Chunks& c, int64_t t, const float* scores, float m) {
  v16 e = exp2_16(load(scores + (t - c.c0)) - m);
  if (c.partial(t)) e = c.real(t) ? e : v16{};
  return e;
}

// Query heads [h0, h0 + NG) of KV head g with D a multiple of 16, values stored [B, D]: after
// head_scores, one pass takes the exponentials and mixes the values with them, normalised once
// at the end. The other arguments are attend()'s.
template <int NG>
__attribute__((always_inline)) inline void attend_heads(const Pool& pool, const int64_t* table,
                                                        const Chunks& c, int64_t g, int64_t h0,
                                                        const float* q, int64_t stride,
                                                        float* scores, float* out) {
  const int64_t D = pool.D, B = pool.B;
  float qh[NG][512], o[NG][512];
  scaled_queries(q, h0, D, stride, qh);
  float m[NG];
  head_scores<NG, 0>(pool, table, c, g, qh, scores, m);
  v16 sum[NG] = {};
  for (int i = 0; i < NG; ++i)
    std::fill(o[i], o[i] + D, 0.0f);
  for (int64_t t = c.c0; t < c.end; t += kLanes) {
    float p[NG][kLanes];
    for (int i = 0; i < NG; ++i) {
      const v16 e = softmax_weight(c, t, scores + i * c.n16, m[i]);
      sum[i] += e;
      store(p[i], e);
    }
    for (int64_t j = std::max(t, c.lo); j < std::min(t + kLanes, c.end); ++j) {
      const float* values = block_of(pool.values, pool, g, table[j / B]) + j % B * D;
      for (int64_t d = 0; d < D; d += kLanes) {
        const v16 vd = load(values + d);
        for (int i = 0; i < NG; ++i)
          store(o[i] + d, load(o[i] + d) + p[i][j - t] * vd);
      }
    }
  }
  for (int i = 0; i < NG; ++i) {
    const float norm = 1.0f / lanes_sum(sum[i]);
    for (int64_t d = 0; d < D; d += kLanes)
      store(o[i] + d, load(o[i] + d) * norm);
    for (int64_t d = 0; d < D; ++d)
      out[((h0 + i) * D + d) * stride] = o[i][d];
  }
}

// attend_heads for D = 8, values stored transposed [D, B]. Three passes, each with few enough
// live vectors to stay in registers (as one pass, the exponential's constants, two heads'
// sixteen value sums and their weights spilled to the stack): head_scores; the exponentials,
// over the scores, and their sums; the values mixed with them, each head's sums over sixteen
// positions a dimension, folded at the end.
template <int NG>
__attribute__((always_inline)) inline void attend_heads_d8(const Pool& pool, const int64_t* table,
                                                           const Chunks& c, int64_t g, int64_t h0,
                                                           const float* q, int64_t stride,
                                                           float* scores, float* out) {
  constexpr int64_t D = 8;
  const int64_t B = pool.B;
  float qh[NG][D];
  scaled_queries(q, h0, D, stride, qh);
  float m[NG];
  head_scores<NG, D>(pool, table, c, g, qh, scores, m);
  v16 sum[NG] = {};
  for (int64_t t = c.c0; t < c.end; t += kLanes) {
    for (int i = 0; i < NG; ++i) {
      const v16 e = softmax_weight(c, t, scores + i * c.n16, m[i]);
      sum[i] += e;
      store(scores + i * c.n16 + (t - c.c0), e);
    }
  }
  v16 acc[NG][D];
  for (int i = 0; i < NG; ++i) {
    for (int64_t d = 0; d < D; ++d)
      acc[i][d] = v16{};
  }
  for (int64_t t = c.c0; t < c.end; t += kLanes) {
    const float* values = block_of(pool.values, pool, g, table[t / B]) + t % B;
    v16 p[NG];
    for (int i = 0; i < NG; ++i)
      p[i] = load(scores + i * c.n16 + (t - c.c0));
    for (int64_t d = 0; d < D; ++d) {
      const v16 vd = load(values + d * B);
      for (int i = 0; i < NG; ++i)
        acc[i][d] += p[i] * vd;
    }
  }
  for (int i = 0; i < NG; ++i) {
    const v16 o = fold8(acc[i]) * (1.0f / lanes_sum(sum[i]));  // lanes 0-7; 8-15 repeat them
    for (int64_t d = 0; d < D; ++d)
      out[((h0 + i) * D + d) * stride] = o[d];
  }
}

}  // namespace

void attend(const Pool& pool, const int64_t* table, int64_t pos, const float* q, int64_t H,
            const float* k, const float* v, int64_t stride, float* scores, float* out,
            const int64_t* next_table, int64_t next_pos) {
  const int64_t K = pool.K, G = H / K;
  const int64_t lo = window_start(pool, pos), end = pos + 1;
  // The next token's keys and values, all heads, load while this one computes: a head's alone
  // computes in less time than its blocks take to arrive from memory.
  if (next_table != nullptr) {
    for (int64_t g = 0; g < K; ++g)
      prefetch(pool, next_table, next_pos, g);
  }
  if (k != nullptr) store_kv(pool, table, pos, k, v, stride);
  // A group's heads four at a time (two with D = 8, whose value sums take eight registers a
  // head), then what is left.
  const Chunks c(lo, end);
  for (int64_t g = 0; g < K; ++g) {
    for (int64_t h = g * G; h < (g + 1) * G;) {
      const int64_t left = (g + 1) * G - h;
      if (values_transposed(pool.D)) {
        if (left >= 2) {
          attend_heads_d8<2>(pool, table, c, g, h, q, stride, scores, out);
          h += 2;
        } else {
          attend_heads_d8<1>(pool, table, c, g, h, q, stride, scores, out);
          h += 1;
        }
      } else if (left >= 4) {
        attend_heads<4>(pool, table, c, g, h, q, stride, scores, out);
        h += 4;
      } else if (left >= 2) {
        attend_heads<2>(pool, table, c, g, h, q, stride, scores, out);
        h += 2;
      } else {
        attend_heads<1>(pool, table, c, g, h, q, stride, scores, out);
        h += 1;
      }
    }
  }
}

FLYWHEEL_SIMD_END

void attend_runs(const Pool& pool, const float* q, const float* k, const float* v, int64_t H,
                 const std::vector<Run>& runs, float* out) {
  const int64_t K = pool.K, D = pool.D;
  int64_t longest = 0;
  std::vector<int64_t> first{0};  // runs' first tokens in the flattened order, then the total
  for (const auto& run : runs) {
    longest = std::max(longest, run.start + run.count);
    first.push_back(first.back() + run.count);
  }
  // Every key and value first (runs write disjoint blocks): then each token, which reads only
  // positions up to its own, attends on its own, and a long prompt spreads over the threads as
  // well as many short ones.
  at::parallel_for(0, std::ssize(runs), 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const auto& run = runs[static_cast<size_t>(r)];
      for (int64_t i = 0; i < run.count; ++i) {
        const int64_t n = run.offset + i;
        store_kv(pool, run.table, run.start + i, k + n * K * D, v + n * K * D, 1);
      }
    }
  });
  // About 32k scores a task.
  const auto grain = std::max<int64_t>(1, 32768 / (H * longest));
  at::parallel_for(0, first.back(), grain, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(scores_size(longest)));
    size_t r = static_cast<size_t>(std::upper_bound(first.begin(), first.end(), begin) -
                                   first.begin() - 1);
    for (int64_t t = begin; t < end; ++t) {
      while (t >= first[r + 1])
        ++r;
      const auto& run = runs[r];
      const int64_t i = t - first[r], n = run.offset + i;
      // Prefetched meanwhile: the next token's keys and values (this run's, or the next run's).
      const Run* next = t + 1 >= end ? nullptr : t + 1 < first[r + 1] ? &run : &runs[r + 1];
      const int64_t next_pos = next == &run      ? run.start + i + 1
                               : next != nullptr ? next->start
                                                 : -1;
      attend(pool, run.table, run.start + i, q + n * H * D, H, nullptr, nullptr, 1, scores.data(),
             out + n * H * D, next != nullptr ? next->table : nullptr, next_pos);
    }
  });
}

}  // namespace flywheel::cpu_attention
