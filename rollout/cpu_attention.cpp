#include "rollout/cpu_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
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

FLYWHEEL_SIMD_BEGIN
using namespace simd;

// The sums of eight vectors' lanes, in lanes 0-7 (and again in 8-15): pairs of vectors folded
// into one, halving the partial sums of each, three times, then adjacent lanes.
inline v16 fold8(const v16 a[8]) {
  const i16 halves = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const i16 quarters = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
  const i16 eighths = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
  const i16 evens = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  v16 w[4], r[2];
  for (int i = 0; i < 4; ++i)  // dims 2i, 2i + 1: 8 partial sums each
    w[i] = __builtin_shuffle(a[2 * i], a[2 * i + 1], halves) +
           __builtin_shuffle(a[2 * i], a[2 * i + 1], halves + 8);
  for (int i = 0; i < 2; ++i)  // four dims, 4 each
    r[i] = __builtin_shuffle(w[2 * i], w[2 * i + 1], quarters) +
           __builtin_shuffle(w[2 * i], w[2 * i + 1], quarters + 4);
  const v16 s = __builtin_shuffle(r[0], r[1], eighths) +  // eight dims, 2 each
                __builtin_shuffle(r[0], r[1], eighths + 2);
  return __builtin_shuffle(s, s, evens) + __builtin_shuffle(s, s, evens + 1);
}

FLYWHEEL_SIMD_END

}  // namespace

bool available(int64_t head_dim, int64_t block_tokens) {
  return simd::available() && (head_dim == 8 || head_dim % simd::kLanes == 0) && head_dim <= 512 &&
         block_tokens % simd::kLanes == 0;
}

int64_t scores_size(int64_t max_seq_len) {
  return 4 * ((max_seq_len + 2 * simd::kLanes) / simd::kLanes * simd::kLanes);
}

FLYWHEEL_SIMD_BEGIN

// Query heads [h0, h0 + NG) of KV head g, which read the same keys and values: one pass over
// the positions computes all NG heads' scaled scores and their maxima (each key vector loaded
// once for NG multiply-adds), one more takes the softmax's exponentials and mixes the values
// with them, normalised once at the end. The other arguments are attend()'s.
template <int NG>
void attend_heads(const Pool& pool, const int64_t* table, int64_t lo, int64_t end, int64_t g,
                  int64_t h0, const float* q, int64_t stride, float* scores, float* out) {
  const int64_t D = pool.D, B = pool.B;
  // Positions [c0, end) in chunks of 16, each inside one block (B is a multiple of 16); only
  // the first and last chunks hold positions outside [lo, end), which they mask.
  const int64_t c0 = lo / kLanes * kLanes, n16 = (end - c0 + kLanes - 1) / kLanes * kLanes;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const v16 lane = lane_numbers();
  const auto partial = [&](int64_t t) { return t < lo || t + kLanes > end; };
  const auto real = [&](int64_t t) {
    return lane >= static_cast<float>(lo - t) && lane < static_cast<float>(end - t);
  };
  float qh[NG][512], o[NG][512];
  for (int i = 0; i < NG; ++i) {
    for (int64_t d = 0; d < D; ++d)
      qh[i][d] = q[((h0 + i) * D + d) * stride];
  }
  const v16 lowest = splat(-std::numeric_limits<float>::infinity());
  v16 top[NG];
  for (int i = 0; i < NG; ++i)
    top[i] = lowest;
  for (int64_t t = c0; t < end; t += kLanes) {
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
      v16 score = (acc[i][0] + acc[i][1]) * scale;
      if (partial(t)) score = real(t) ? score : lowest;
      top[i] = score > top[i] ? score : top[i];
      store(scores + i * n16 + (t - c0), score);
    }
  }
  float m[NG];
  v16 sum[NG];
  for (int i = 0; i < NG; ++i) {
    m[i] = lanes_max(top[i]);
    sum[i] = v16{};
  }
  // The softmax weight of chunk t for head i: exp(score - max), 0 where masked (exp16 clamps
  // -inf to a tiny positive value). Masked lanes still multiply what a block holds there: an
  // earlier sequence's values or the pool's zeros, finite, so they add exactly 0.
  const auto weight = [&](int i, int64_t t) {
    v16 e = exp16(load(scores + i * n16 + (t - c0)) - m[i]);
    if (partial(t)) e = real(t) ? e : v16{};
    sum[i] += e;
    return e;
  };
  if (values_transposed(D)) {  // D = 8
    v16 acc[NG][8] = {};
    for (int64_t t = c0; t < end; t += kLanes) {
      const float* values = block_of(pool.values, pool, g, table[t / B]) + t % B;
      v16 p[NG];
      for (int i = 0; i < NG; ++i)
        p[i] = weight(i, t);
      for (int d = 0; d < 8; ++d) {
        const v16 vd = load(values + d * B);
        for (int i = 0; i < NG; ++i)
          acc[i][d] += p[i] * vd;
      }
    }
    for (int i = 0; i < NG; ++i)  // lanes 0-7; 8-15 repeat them
      store(o[i], fold8(acc[i]) * (1.0f / lanes_sum(sum[i])));
  } else {
    for (int i = 0; i < NG; ++i)
      std::fill(o[i], o[i] + D, 0.0f);
    for (int64_t t = c0; t < end; t += kLanes) {
      float p[NG][kLanes];
      for (int i = 0; i < NG; ++i)
        store(p[i], weight(i, t));
      for (int64_t j = std::max(t, lo); j < std::min(t + kLanes, end); ++j) {
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
    }
  }
  for (int i = 0; i < NG; ++i) {
    for (int64_t d = 0; d < D; ++d)
      out[((h0 + i) * D + d) * stride] = o[i][d];
  }
}

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
  const int64_t most = values_transposed(pool.D) ? 2 : 4;
  for (int64_t g = 0; g < K; ++g) {
    for (int64_t h = g * G; h < (g + 1) * G;) {
      const int64_t left = (g + 1) * G - h;
      if (left >= 4 && most >= 4) {
        attend_heads<4>(pool, table, lo, end, g, h, q, stride, scores, out);
        h += 4;
      } else if (left >= 2) {
        attend_heads<2>(pool, table, lo, end, g, h, q, stride, scores, out);
        h += 2;
      } else {
        attend_heads<1>(pool, table, lo, end, g, h, q, stride, scores, out);
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
