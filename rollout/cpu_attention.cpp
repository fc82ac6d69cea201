#include "rollout/cpu_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "rollout/simd.h"

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

// Softmax weights of scores[i], i in [0, n16) (a multiple of 16), of which only [first, end)
// are real: exp(scale * score - max) there, 0 elsewhere. Returns 1 / their sum, the
// normaliser, which the caller applies to the mixed values instead of to every weight.
float softmax_weights(float* scores, int64_t first, int64_t end, int64_t n16, float scale) {
  const float lowest = -std::numeric_limits<float>::infinity();
  const v16 lane = lane_numbers();
  const auto real = [&](int64_t i) {
    return lane >= static_cast<float>(first - i) && lane < static_cast<float>(end - i);
  };
  v16 top = splat(lowest);
  for (int64_t i = 0; i < n16; i += kLanes) {
    v16 v = load(scores + i) * scale;
    v = real(i) ? v : splat(lowest);
    store(scores + i, v);
    top = v > top ? v : top;
  }
  const float m = lanes_max(top);
  v16 sum{};
  for (int64_t i = 0; i < n16; i += kLanes) {
    v16 e = exp16(load(scores + i) - m);
    e = real(i) ? e : v16{};
    store(scores + i, e);
    sum += e;
  }
  return 1.0f / lanes_sum(sum);
}

FLYWHEEL_SIMD_END

}  // namespace

bool available(int64_t head_dim, int64_t block_tokens) {
  return simd::available() && (head_dim == 8 || head_dim % simd::kLanes == 0) && head_dim <= 512 &&
         block_tokens % simd::kLanes == 0;
}

int64_t scores_size(int64_t max_seq_len) {
  return (max_seq_len + 2 * simd::kLanes) / simd::kLanes * simd::kLanes;
}

FLYWHEEL_SIMD_BEGIN

void attend(const Pool& pool, const int64_t* table, int64_t pos, const float* q, int64_t H,
            const float* k, const float* v, int64_t stride, float* scores, float* out,
            const int64_t* next_table, int64_t next_pos) {
  const int64_t K = pool.K, D = pool.D, B = pool.B, G = H / K;
  const bool tv = values_transposed(D);
  // Positions [c0, end) in chunks of 16, each inside one block (B is a multiple of 16); the
  // real ones are [lo, end).
  const int64_t lo = window_start(pool, pos), c0 = lo / kLanes * kLanes, end = pos + 1;
  const int64_t n16 = (end - c0 + kLanes - 1) / kLanes * kLanes;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // The next token's keys and values, all heads, load while this one computes: a head's alone
  // computes in less time than its blocks take to arrive from memory.
  if (next_table != nullptr) {
    for (int64_t g = 0; g < K; ++g)
      prefetch(pool, next_table, next_pos, g);
  }
  if (k != nullptr) store_kv(pool, table, pos, k, v, stride);
  for (int64_t g = 0; g < K; ++g) {
    for (int64_t h = g * G; h < (g + 1) * G; ++h) {
      float qh[512], o[512];
      for (int64_t d = 0; d < D; ++d)
        qh[d] = q[(h * D + d) * stride];
      for (int64_t t = c0; t < end; t += kLanes) {
        const float* keys = block_of(pool.keys, pool, g, table[t / B]) + t % B;
        v16 acc[4] = {};  // four chains of multiply-adds, not one
        for (int64_t d = 0; d < D; d += 4) {
          for (int i = 0; i < 4; ++i)
            acc[i] += qh[d + i] * load(keys + (d + i) * B);
        }
        store(scores + (t - c0), (acc[0] + acc[1]) + (acc[2] + acc[3]));
      }
      const float norm = softmax_weights(scores, lo - c0, end - c0, n16, scale);
      if (tv) {
        v16 acc[8] = {};
        for (int64_t t = c0; t < end; t += kLanes) {
          const float* values = block_of(pool.values, pool, g, table[t / B]) + t % B;
          const v16 p = load(scores + (t - c0));
          for (int d = 0; d < 8; ++d)
            acc[d] += p * load(values + d * B);
        }
        store(o, fold8(acc) * norm);  // lanes 0-7; 8-15 repeat them
      } else {
        std::fill(o, o + D, 0.0f);
        for (int64_t t = lo; t < end; ++t) {
          const float* values = block_of(pool.values, pool, g, table[t / B]) + t % B * D;
          const float p = scores[t - c0];
          for (int64_t d = 0; d < D; d += kLanes)
            store(o + d, load(o + d) + p * load(values + d));
        }
        for (int64_t d = 0; d < D; d += kLanes)
          store(o + d, load(o + d) * norm);
      }
      for (int64_t d = 0; d < D; ++d)
        out[(h * D + d) * stride] = o[d];
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
