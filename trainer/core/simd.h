// Sixteen-float vectors for the CPU kernels (the rollout engine's decode step and sampler, the
// LM head's label log-probs in losses/softmax_rows.h), written with GCC's vector extensions and
// compiled for AVX-512 inside FLYWHEEL_SIMD_BEGIN / FLYWHEEL_SIMD_END whatever the rest of the
// build targets. Callers check available() at run time and take their composed LibTorch path on
// other CPUs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include <immintrin.h>

// Code between these is compiled for AVX-512 (and must only run where available() is true).
// clang-format off
#define FLYWHEEL_SIMD_BEGIN \
  _Pragma("GCC push_options") \
  _Pragma("GCC target(\"avx512f,avx512dq,avx512vl,avx512bw,avx2,fma\")")
// clang-format on
#define FLYWHEEL_SIMD_END _Pragma("GCC pop_options")

namespace flywheel::simd {

// Elements per parallel task of the CPU kernels, as ATen's own elementwise kernels use: below
// it a kernel runs on the calling thread, where a parallel region would cost more than the work.
inline constexpr int64_t kGrain = 32768;

// Rows of `row_size` elements per parallel task.
inline int64_t rows_grain(int64_t row_size) {
  return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, row_size));
}

// Whether this CPU runs the code between FLYWHEEL_SIMD_BEGIN and FLYWHEEL_SIMD_END.
inline bool available() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

FLYWHEEL_SIMD_BEGIN

inline constexpr int64_t kLanes = 16;
// 16 floats; aligned(4) so that loads and stores through it need no alignment.
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t i16 __attribute__((vector_size(64), aligned(4)));

// Eight floats: a row of a small head (head_dim 8, 16, 24, ...) a vector at a time. On cores
// that split 512-bit operations in two (AMD Zen 4) they multiply-add as fast per float.
typedef float v8 __attribute__((vector_size(32), aligned(4)));

// A vector (sixteen floats unless V says v8) from p, and back.
template <typename V = v16>
inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename V>
inline void store(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
inline v16 splat(float x) {
  return v16{} + x;
}

// e^x to within ~1 ulp: x = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-7 polynomial (the
// minimax fit Cephes' expf uses), 2^n put into the exponent bits. Clamped to [-87.3, 88]
// where 2^n stays a normal float; softmax and SiLU need nothing beyond.
inline v16 exp16(v16 x) {
  x = x < -87.3f ? splat(-87.3f) : x;
  x = x > 88.0f ? splat(88.0f) : x;
  // n = round(x / ln2): adding 1.5 * 2^23 leaves no bits below the unit.
  const v16 n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  v16 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  v16 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const v16 e = p * r * r + r + 1.0f;
  i16 bits;
  std::memcpy(&bits, &e, sizeof bits);
  bits += __builtin_convertvector(n, i16) << 23;
  v16 out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// 2^x to within ~1 ulp, for the attention kernels' softmax, whose scores are kept in base 2
// (log2 e folded into the queries): x = n + f with |f| <= 1/2, 2^f by a degree-6 polynomial
// (fitted for least maximum relative error: 7.2e-8 at worst, tests/fused_cpu_test.cpp), 2^n
// applied by scalef. Ten vector operations where exp16 takes eighteen: no reduction by ln 2 in two
// parts, a degree less, one instruction for the exponent, no clamp above (past 128 the result is
// inf). Clamped below at -125, where the result is still a normal float (a denormal result costs a
// microcode assist, and every row's masked lanes come here); NaN stays NaN.
inline v16 exp2_16(v16 x) {
  x = x < -125.0f ? splat(-125.0f) : x;
  const v16 n = reinterpret_cast<v16>(_mm512_maskz_roundscale_ps(
      0xffff, reinterpret_cast<__m512>(x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const v16 f = x - n;
  v16 p = splat(1.534581097e-4f);
  p = p * f + 1.339993090e-3f;
  p = p * f + 9.618489072e-3f;
  p = p * f + 5.550328642e-2f;
  p = p * f + 2.402264625e-1f;
  p = p * f + 6.931471825e-1f;
  p = p * f + 1.0f;
  return reinterpret_cast<v16>(
      _mm512_maskz_scalef_ps(0xffff, reinterpret_cast<__m512>(p), reinterpret_cast<__m512>(n)));
}

// v with its lanes swapped at distance 8, 4, 2 or 1 (k = 0..3): folding v with each in turn
// leaves the fold of all 16 lanes in every lane, in 4 shuffles rather than 15 steps.
inline v16 swap_lanes(v16 v, int k) {
  static const i16 kSwap[4] = {{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7},
                               {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11},
                               {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13},
                               {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14}};
  return __builtin_shuffle(v, kSwap[k]);
}

// The sums of eight vectors' lanes, a[i]'s in lane i (and again in lane 8 + i): pairs of
// vectors folded into one, halving the partial sums of each, three times, then adjacent lanes.
inline v16 fold8(const v16 a[8]) {
  const i16 halves = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  const i16 quarters = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
  const i16 eighths = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
  const i16 evens = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  v16 w[4], r[2];
  for (int i = 0; i < 4; ++i)  // a[2i], a[2i + 1]: 8 partial sums each
    w[i] = __builtin_shuffle(a[2 * i], a[2 * i + 1], halves) +
           __builtin_shuffle(a[2 * i], a[2 * i + 1], halves + 8);
  for (int i = 0; i < 2; ++i)  // four vectors' sums, 4 each
    r[i] = __builtin_shuffle(w[2 * i], w[2 * i + 1], quarters) +
           __builtin_shuffle(w[2 * i], w[2 * i + 1], quarters + 4);
  const v16 s = __builtin_shuffle(r[0], r[1], eighths) +  // eight, 2 each
                __builtin_shuffle(r[0], r[1], eighths + 2);
  return __builtin_shuffle(s, s, evens) + __builtin_shuffle(s, s, evens + 1);
}

inline float lanes_max(v16 v) {
  for (int k = 0; k < 4; ++k) {
    const v16 w = swap_lanes(v, k);
    v = v > w ? v : w;
  }
  return v[0];
}

inline float lanes_sum(v16 v) {
  for (int k = 0; k < 4; ++k)
    v += swap_lanes(v, k);
  return v[0];
}

// Lanes [0, 16) as floats, to mask the tail of a row: `lane < n - t ? v : other`.
inline v16 lane_numbers() {
  return v16{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
}

// log_softmax(x)[i] = (x[i] - max) - log_sum over x[0, n), n > 0, as ATen computes it. Reads
// nothing past x[n - 1]: the tail of whole vectors is taken one float at a time.
struct LogSoftmaxParts {
  float max = 0, log_sum = 0;
};
inline LogSoftmaxParts log_softmax_parts(const float* x, int64_t n) {
  const int64_t whole = n / kLanes * kLanes;
  v16 top = splat(-__builtin_inff());
  for (int64_t t = 0; t < whole; t += kLanes) {
    const v16 v = load(x + t);
    top = v > top ? v : top;
  }
  float m = lanes_max(top);
  for (int64_t t = whole; t < n; ++t)
    m = x[t] > m ? x[t] : m;
  v16 sum{};
  for (int64_t t = 0; t < whole; t += kLanes)
    sum += exp16(load(x + t) - m);
  float total = lanes_sum(sum);
  for (int64_t t = whole; t < n; ++t)
    total += std::exp(x[t] - m);
  return {m, std::log(total)};
}

FLYWHEEL_SIMD_END

}  // namespace flywheel::simd
