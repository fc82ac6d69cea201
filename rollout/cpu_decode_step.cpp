#include "rollout/cpu_decode_step.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "rollout/simd.h"
#include "trainer/model/rotary.h"

namespace flywheel {
namespace {

// A model's parameters and KV slots as plain pointers, read once per step: the kernels below
// take no tensors.
struct Projection {
  const float* w = nullptr;  // [out, in], as torch::nn::Linear stores it
  const float* b = nullptr;  // [out], or null
  int64_t out = 0, in = 0;
};
struct Layer {
  const float* attn_norm = nullptr;
  const float* mlp_norm = nullptr;
  Projection q, k, v, o, gate, up, down;
  float* keys = nullptr;    // [slots, K, L, D]
  float* values = nullptr;  // [slots, K, L, D]
};
struct Net {
  int64_t C = 0, H = 0, K = 0, D = 0, F = 0, V = 0, L = 0;
  float eps = 0;
  int64_t window = 0;  // 0: none
  const float* embed = nullptr;
  const float* norm = nullptr;
  const float* cos = nullptr;  // [L, D]
  const float* sin = nullptr;
  Projection head;
  std::vector<Layer> layers;
};

bool plain_float(const torch::Tensor& t) {
  return !t.defined() ||
         (t.scalar_type() == torch::kFloat32 && t.device().is_cpu() && t.is_contiguous());
}

// A parameter's data, or null when undefined; an error if it is no longer what applies()
// accepted (the model was cast or moved since).
const float* floats(const torch::Tensor& t) {
  TORCH_CHECK(plain_float(t),
              "CpuDecodeStep: a parameter is no longer contiguous float32 on "
              "the CPU");
  return t.defined() ? t.data_ptr<float>() : nullptr;
}

Projection projection(const Linear& linear) {
  const auto& w = linear->weight;
  return {floats(w), floats(linear->bias), w.size(0), w.size(1)};
}

FLYWHEEL_SIMD_BEGIN
using namespace simd;

// y [JB, 16 MV] = W [JB, in] x [in, 16 MV] (row strides `in` and mp): every weight is
// broadcast once against MV vectors of rows; the JB x MV sums stay in registers.
template <int JB, int MV>
inline __attribute__((always_inline)) void product_tile(const float* w, int64_t in, const float* x,
                                                        int64_t mp, float* y) {
  v16 acc[JB][MV];
#pragma GCC unroll 8
  for (int j = 0; j < JB; ++j) {
#pragma GCC unroll 4
    for (int m = 0; m < MV; ++m)
      acc[j][m] = v16{};
  }
  for (int64_t p = 0; p < in; ++p) {
    v16 xv[MV];
#pragma GCC unroll 4
    for (int m = 0; m < MV; ++m)
      xv[m] = load(x + p * mp + m * kLanes);
#pragma GCC unroll 8
    for (int j = 0; j < JB; ++j) {
      const float wj = w[j * in + p];
#pragma GCC unroll 4
      for (int m = 0; m < MV; ++m)
        acc[j][m] += wj * xv[m];
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < JB; ++j) {
#pragma GCC unroll 4
    for (int m = 0; m < MV; ++m)
      store(y + j * mp + m * kLanes, acc[j][m]);
  }
}

template <int MV>
void product_columns(const Projection& l, const float* x, int64_t mp, float* y) {
  constexpr int kBlock = 8;
  int64_t j = 0;
  for (; j + kBlock <= l.out; j += kBlock)
    product_tile<kBlock, MV>(l.w + j * l.in, l.in, x, mp, y + j * mp);
  for (; j < l.out; ++j)
    product_tile<1, MV>(l.w + j * l.in, l.in, x, mp, y + j * mp);
}

// y [out, mp] = W x (+ b) for x [in, mp].
void project(const Projection& l, const float* x, int64_t mp, float* y) {
  for (int64_t c = 0; c < mp;) {
    if (mp - c >= 2 * kLanes) {
      product_columns<2>(l, x + c, mp, y + c);
      c += 2 * kLanes;
    } else {
      product_columns<1>(l, x + c, mp, y + c);
      c += kLanes;
    }
  }
  if (l.b == nullptr) return;
  for (int64_t j = 0; j < l.out; ++j) {
    for (int64_t c = 0; c < mp; c += kLanes)
      store(y + j * mp + c, load(y + j * mp + c) + l.b[j]);
  }
}

// x += W a (+ b): the residual adds.
void project_add(const Projection& l, const float* a, int64_t mp, float* scratch, float* x) {
  project(l, a, mp, scratch);
  for (int64_t i = 0; i < l.out * mp; i += kLanes)
    store(x + i, load(x + i) + load(scratch + i));
}

// y = w * (x / sqrt(mean(x^2) + eps)) per row, x and y [C, mp].
void rms_norm(const float* x, const float* w, int64_t C, int64_t mp, float eps, float* y) {
  for (int64_t c = 0; c < mp; c += kLanes) {
    v16 squares{};
    for (int64_t f = 0; f < C; ++f) {
      const v16 v = load(x + f * mp + c);
      squares += v * v;
    }
    v16 inv{};
    for (int i = 0; i < kLanes; ++i)
      inv[i] = 1.0f / std::sqrt(squares[i] / static_cast<float>(C) + eps);
    for (int64_t f = 0; f < C; ++f)
      store(y + f * mp + c, w[f] * (load(x + f * mp + c) * inv));
  }
}

// gate = silu(gate) * up, both [F, mp].
void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i += kLanes) {
    const v16 g = load(gate + i);
    store(gate + i, g / (1.0f + exp16(-g)) * load(up + i));
  }
}

// Rotary embedding of one head's D values at table row cos/sin (rotate-half layout,
// trainer/model/rotary.h).
void rope(float* x, const float* cos, const float* sin, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * cos[i] + -b * sin[i];
    x[i + half] = b * cos[i + half] + a * sin[i + half];
  }
}

// Sixteen keys' dot products from their partial sums: eight vectors, each holding two keys'
// sums of eight lanes (key 2i in lanes 0-7 of v[i], key 2i + 1 in lanes 8-15), folded in
// three rounds of shuffles into one vector of the sixteen sums, in key order.
inline v16 fold_pairs(v16 v[8]) {
  const i16 a_lo = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
  const i16 b_lo = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
  const i16 c_lo = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  v16 r[4], s[2];
  for (int i = 0; i < 4; ++i)
    r[i] = __builtin_shuffle(v[2 * i], v[2 * i + 1], a_lo) +
           __builtin_shuffle(v[2 * i], v[2 * i + 1], a_lo + 4);
  for (int i = 0; i < 2; ++i)
    s[i] = __builtin_shuffle(r[2 * i], r[2 * i + 1], b_lo) +
           __builtin_shuffle(r[2 * i], r[2 * i + 1], b_lo + 2);
  return __builtin_shuffle(s[0], s[1], c_lo) + __builtin_shuffle(s[0], s[1], c_lo + 1);
}

// scores[t] = q . keys[t] for t < n (keys [n, D]); D = 8 or a multiple of 16.
void dot_keys(const float* q, const float* keys, int64_t n, int64_t D, float* scores) {
  int64_t t = 0;
  if (D == 8) {
    v16 q2{};
    for (int i = 0; i < kLanes; ++i)
      q2[i] = q[i % 8];
    for (; t + kLanes <= n; t += kLanes) {
      v16 v[8];
      for (int i = 0; i < 8; ++i)
        v[i] = load(keys + (t + 2 * i) * 8) * q2;
      store(scores + t, fold_pairs(v));
    }
  } else if (D % kLanes == 0) {
    const i16 lo = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    for (; t + kLanes <= n; t += kLanes) {
      v16 acc[kLanes];
      for (int i = 0; i < kLanes; ++i) {
        acc[i] = v16{};
        for (int64_t d = 0; d < D; d += kLanes)
          acc[i] += load(keys + (t + i) * D + d) * load(q + d);
      }
      v16 v[8];
      for (int i = 0; i < 8; ++i)
        v[i] = __builtin_shuffle(acc[2 * i], acc[2 * i + 1], lo) +
               __builtin_shuffle(acc[2 * i], acc[2 * i + 1], lo + 8);
      store(scores + t, fold_pairs(v));
    }
  }
  for (; t < n; ++t) {
    float s = 0;
    for (int64_t d = 0; d < D; ++d)
      s += q[d] * keys[t * D + d];
    scores[t] = s;
  }
}

// out[D] = sum_t p[t] values[t] (values [n, D]).
void mix_values(const float* p, const float* values, int64_t n, int64_t D, float* out) {
  std::fill(out, out + D, 0.0f);
  int64_t t = 0;
  if (D == 8) {
    // Two values a vector, p[t] on lanes 0-7 and p[t + 1] on 8-15, spread from one load of
    // sixteen weights; four sums, so that consecutive additions do not wait on each other.
    const i16 pair[8] = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                         {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
                         {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
                         {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
                         {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
                         {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
                         {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
                         {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15}};
    v16 acc[4] = {};
    for (; t + kLanes <= n; t += kLanes) {
      const v16 weights = load(p + t);
      for (int i = 0; i < 8; ++i)
        acc[i % 4] += __builtin_shuffle(weights, pair[i]) * load(values + (t + 2 * i) * 8);
    }
    const v16 all = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (int d = 0; d < 8; ++d)
      out[d] = all[d] + all[d + 8];
  } else if (D % kLanes == 0) {
    for (; t < n; ++t) {
      for (int64_t d = 0; d < D; d += kLanes)
        store(out + d, load(out + d) + p[t] * load(values + t * D + d));
    }
  }
  for (; t < n; ++t) {
    for (int64_t d = 0; d < D; ++d)
      out[d] += p[t] * values[t * D + d];
  }
}

// exp(scale * scores[t] - max) for t < n in place, 0 from n to n rounded up to 16 (`scores`
// has room); returns 1 / their sum, the softmax's normaliser, which the caller applies to the
// mixed values instead of to every weight.
float softmax_weights(float* scores, int64_t n, float scale) {
  const float lowest = -std::numeric_limits<float>::infinity();
  const v16 lane = lane_numbers();
  v16 top = splat(lowest);
  for (int64_t t = 0; t < n; t += kLanes) {
    v16 v = load(scores + t) * scale;
    v = lane < static_cast<float>(n - t) ? v : splat(lowest);
    store(scores + t, v);
    top = v > top ? v : top;
  }
  const float m = lanes_max(top);
  v16 sum{};
  for (int64_t t = 0; t < n; t += kLanes) {
    v16 e = exp16(load(scores + t) - m);
    e = lane < static_cast<float>(n - t) ? e : v16{};
    store(scores + t, e);
    sum += e;
  }
  return 1.0f / lanes_sum(sum);
}

// Scratch of one thread's block of rows, feature-major, columns padded to mp. Kept per thread
// across steps (LibTorch's OpenMP threads live as long as the process), so a step allocates
// nothing: what a padding column or a filler holds is never read into a real row, as every
// operation but attention is per column and attention reads only real rows' columns.
struct Scratch {
  void size_for(const Net& net, int64_t mp) {
    const auto n = [&](int64_t features) { return static_cast<size_t>(features * mp); };
    x.resize(n(net.C));
    h.resize(n(net.C));
    q.resize(n(net.H * net.D));
    k.resize(n(net.K * net.D));
    v.resize(n(net.K * net.D));
    attn.resize(n(net.H * net.D));
    gate.resize(n(net.F));
    up.resize(n(net.F));
    out.resize(n(std::max(net.C, net.V)));
    row.resize(static_cast<size_t>((net.H + 2 * net.K) * net.D));
    scores.resize(static_cast<size_t>((net.L + kLanes) / kLanes * kLanes));
  }
  std::vector<float> x, h, q, k, v, attn, gate, up, out, row, scores;
};

// Starts loading one head's cached keys and values [lo, pos) into L2 (pos < 0: nothing). A
// step reads every running sequence's whole cache, more than L2 keeps between steps, in
// stretches (a head's, ~2.5 KiB for stories260K) too short for the hardware prefetcher to
// ramp up on.
void prefetch_head(const Net& net, const Layer& layer, int64_t slot, int64_t g, int64_t pos) {
  if (pos < 0 || pos == net.L - 1) return;
  const int64_t lo = net.window > 0 ? std::max<int64_t>(0, pos - net.window + 1) : 0;
  const int64_t base = ((slot * net.K + g) * net.L + lo) * net.D;
  for (int64_t i = 0; i < (pos - lo) * net.D; i += 16) {
    __builtin_prefetch(layer.keys + base + i, 0, 2);
    __builtin_prefetch(layer.values + base + i, 0, 2);
  }
}

// Attention of column c (slot `slot`, at `pos`) in one layer: its key and value go into the
// slot, its heads attend over the slot's keys [lo, pos]. next_pos: the next row's position,
// or -1 when this is the block's last.
void attend_row(const Net& net, const Layer& layer, Scratch& s, int64_t mp, int64_t c, int64_t slot,
                int64_t pos, int64_t next_pos) {
  const int64_t H = net.H, K = net.K, D = net.D, G = H / K;
  float* q = s.row.data();
  float* k = q + H * D;
  float* v = k + K * D;
  for (int64_t i = 0; i < H * D; ++i)
    q[i] = s.q[static_cast<size_t>(i * mp + c)];
  for (int64_t i = 0; i < K * D; ++i) {
    k[i] = s.k[static_cast<size_t>(i * mp + c)];
    v[i] = s.v[static_cast<size_t>(i * mp + c)];
  }
  const float* cos = net.cos + pos * D;
  const float* sin = net.sin + pos * D;
  for (int64_t h = 0; h < H; ++h)
    rope(q + h * D, cos, sin, D);
  const int64_t lo = net.window > 0 ? std::max<int64_t>(0, pos - net.window + 1) : 0;
  const int64_t n = pos - lo + 1;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  float out[512];
  for (int64_t g = 0; g < K; ++g) {
    // The next head's keys and values (or the next row's first) load while this one computes.
    if (g + 1 < K) {
      prefetch_head(net, layer, slot, g + 1, pos);
    } else {
      prefetch_head(net, layer, slot + 1, 0, next_pos);
    }
    rope(k + g * D, cos, sin, D);
    float* slot_keys = layer.keys + (slot * K + g) * net.L * D;
    float* slot_values = layer.values + (slot * K + g) * net.L * D;
    std::copy_n(k + g * D, D, slot_keys + pos * D);
    std::copy_n(v + g * D, D, slot_values + pos * D);
    for (int64_t h = g * G; h < (g + 1) * G; ++h) {
      dot_keys(q + h * D, slot_keys + lo * D, n, D, s.scores.data());
      const float norm = softmax_weights(s.scores.data(), n, scale);
      mix_values(s.scores.data(), slot_values + lo * D, n, D, out);
      for (int64_t d = 0; d < D; ++d)
        s.attn[static_cast<size_t>((h * D + d) * mp + c)] = out[d] * norm;
    }
  }
}

// Rows [r0, r1) through the whole model into logits [R, V] (rows r0.. of `logits`).
void forward_rows(const Net& net, const int64_t* ids, const int64_t* positions, int64_t r0,
                  int64_t r1, float* logits) {
  const int64_t m = r1 - r0, mp = (m + kLanes - 1) / kLanes * kLanes;
  thread_local Scratch s;
  s.size_for(net, mp);
  for (int64_t f = 0; f < net.C; ++f) {
    float* x = s.x.data() + f * mp;
    for (int64_t c = 0; c < m; ++c)
      x[c] = net.embed[ids[r0 + c] * net.C + f];
    // Padding columns start from zero at every step: left to the last step's values, their
    // residual stream would grow step after step into infinities and denormals, which are
    // slow to compute with even where nobody reads them.
    std::fill(x + m, x + mp, 0.0f);
  }
  for (const auto& layer : net.layers) {
    rms_norm(s.x.data(), layer.attn_norm, net.C, mp, net.eps, s.h.data());
    project(layer.q, s.h.data(), mp, s.q.data());
    project(layer.k, s.h.data(), mp, s.k.data());
    project(layer.v, s.h.data(), mp, s.v.data());
    for (int64_t c = 0; c < m; ++c) {
      // A filler (rollout/kv_slots.h) attends to nothing; its output is dropped.
      if (positions[r0 + c] != net.L - 1)
        attend_row(net, layer, s, mp, c, r0 + c, positions[r0 + c],
                   c + 1 < m ? positions[r0 + c + 1] : -1);
    }
    project_add(layer.o, s.attn.data(), mp, s.out.data(), s.x.data());
    rms_norm(s.x.data(), layer.mlp_norm, net.C, mp, net.eps, s.h.data());
    project(layer.gate, s.h.data(), mp, s.gate.data());
    project(layer.up, s.h.data(), mp, s.up.data());
    silu_mul(s.gate.data(), s.up.data(), net.F * mp);
    project_add(layer.down, s.gate.data(), mp, s.out.data(), s.x.data());
  }
  rms_norm(s.x.data(), net.norm, net.C, mp, net.eps, s.h.data());
  project(net.head, s.h.data(), mp, s.out.data());
  for (int64_t c = 0; c < m; ++c) {
    float* row = logits + (r0 + c) * net.V;
    for (int64_t j = 0; j < net.V; ++j)
      row[j] = s.out[static_cast<size_t>(j * mp + c)];
  }
}

FLYWHEEL_SIMD_END

}  // namespace

bool CpuDecodeStep::applies(const LlamaForCausalLM& model) {
  if (!simd::available()) return false;
  const auto& config = model->config();
  if (model->model->parameter_gather != nullptr ||
      (config.head_dim != 8 && config.head_dim % simd::kLanes != 0) || config.head_dim > 512) {
    return false;
  }
  for (const auto& p : model->parameters()) {
    if (!plain_float(p)) return false;
  }
  return true;
}

CpuDecodeStep::CpuDecodeStep(LlamaForCausalLM& model, KVSlots& slots)
    : model_(model), slots_(slots) {
  TORCH_CHECK(applies(model), "CpuDecodeStep: the model is not float32 on an AVX-512 CPU");
  const auto positions = torch::arange(slots.slot_length(), torch::kInt64).view({1, -1});
  auto [cos, sin] = rope_cos_sin(rope_inv_freq(model->config()), positions);
  cos_ = cos[0].contiguous();
  sin_ = sin[0].contiguous();
  for (const auto& p : model->parameters())
    weight_bytes_ += p.numel() * static_cast<int64_t>(sizeof(float));
}

bool CpuDecodeStep::worth(int64_t rows) const {
  // Weights that stay in a core's L2 between steps (stories260K: 1 MB) cost nothing to
  // re-read; otherwise 16 rows a thread make the products arithmetic-bound (measured:
  // llama-10m at 64 rows, 32 a thread, ran 6.8k tokens/s fused and 4.1k composed).
  constexpr int64_t kCacheResident = int64_t{2} << 20;
  return weight_bytes_ <= kCacheResident || rows >= 16 * at::get_num_threads();
}

torch::Tensor CpuDecodeStep::run(const std::vector<int64_t>& ids,
                                 const std::vector<int64_t>& positions) {
  const auto& config = model_->config();
  const auto rows = static_cast<int64_t>(ids.size());
  TORCH_CHECK(rows > 0 && rows <= slots_.slots() && rows == static_cast<int64_t>(positions.size()),
              "CpuDecodeStep: ", rows, " rows for ", slots_.slots(), " slots");
  for (int64_t r = 0; r < rows; ++r) {
    const auto id = ids[static_cast<size_t>(r)], pos = positions[static_cast<size_t>(r)];
    TORCH_CHECK(id >= 0 && id < config.vocab_size && pos >= 0 && pos < slots_.slot_length(),
                "CpuDecodeStep: row ", r, " has token ", id, " at position ", pos);
  }
  // The model may have changed since construction (cast, moved, sharded): every pointer is
  // checked as it is taken (floats()).
  TORCH_CHECK(model_->model->parameter_gather == nullptr,
              "CpuDecodeStep: the model's parameters are sharded now");
  // Pointers are read at every step: parameters an optimizer replaced are seen at once.
  Net net;
  net.C = config.hidden_size;
  net.H = config.num_attention_heads;
  net.K = config.num_key_value_heads;
  net.D = config.head_dim;
  net.F = config.intermediate_size;
  net.V = config.vocab_size;
  net.L = slots_.slot_length();
  net.eps = static_cast<float>(config.rms_norm_eps);
  net.window = config.sliding_window.value_or(0);
  auto& decoder = model_->model;
  net.embed = floats(decoder->embed_tokens->weight);
  net.norm = floats(decoder->norm->weight);
  net.cos = cos_.data_ptr<float>();
  net.sin = sin_.data_ptr<float>();
  const auto head = model_->head_weight();
  net.head = {floats(head), nullptr, head.size(0), head.size(1)};
  for (size_t i = 0; i < decoder->layers->size(); ++i) {
    const auto& layer = decoder->layers[i]->as<DecoderLayer>();
    Layer l;
    l.attn_norm = floats(layer->input_layernorm->weight);
    l.mlp_norm = floats(layer->post_attention_layernorm->weight);
    l.q = projection(layer->self_attn->q_proj);
    l.k = projection(layer->self_attn->k_proj);
    l.v = projection(layer->self_attn->v_proj);
    l.o = projection(layer->self_attn->o_proj);
    l.gate = projection(layer->mlp->gate_proj);
    l.up = projection(layer->mlp->up_proj);
    l.down = projection(layer->mlp->down_proj);
    l.keys = slots_.keys(static_cast<int64_t>(i)).data_ptr<float>();
    l.values = slots_.values(static_cast<int64_t>(i)).data_ptr<float>();
    net.layers.push_back(l);
  }
  auto logits = torch::empty({rows, net.V}, torch::kFloat32);
  float* out = logits.data_ptr<float>();
  // One block of rows per thread, each through every layer on its own.
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    forward_rows(net, ids.data(), positions.data(), begin, end, out);
  });
  return logits;
}

}  // namespace flywheel
