#include "rollout/cpu_decode_step.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "rollout/cpu_attention.h"
#include "trainer/core/simd.h"
#include "trainer/model/rotary.h"

namespace flywheel {
namespace {

// A model's parameters and KV blocks as plain pointers, read once per step: the kernels below
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
  cpu_attention::Pool pool;  // its keys and values
};
struct Net {
  int64_t C = 0, H = 0, K = 0, D = 0, F = 0, V = 0;
  int64_t L = 0;  // positions a sequence may hold
  int64_t T = 0;  // entries of a block table
  float eps = 0;
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

template <int JB, int MV>
void product_columns(const Projection& l, const float* x, int64_t mp, float* y) {
  int64_t j = 0;
  for (; j + JB <= l.out; j += JB)
    product_tile<JB, MV>(l.w + j * l.in, l.in, x, mp, y + j * mp);
  for (; j < l.out; ++j)
    product_tile<1, MV>(l.w + j * l.in, l.in, x, mp, y + j * mp);
}

// Columns [c0, c0 + M) of eight rows of y, into lanes c0.. of rows[8]: rows w[8] of W times the
// columns xr [M, in16], each contiguous with zeros from `in` to in16 (a multiple of 16),
// sixteen inputs at a time into sixteen partial sums a row, folded at the end.
template <int M>
inline void row_block(const float* const (&w)[8], const float* xr, int64_t in, int64_t in16, int c0,
                      v16 (&rows)[8]) {
  // W's rows hold `in` floats: the last chunk of a row reads only its own (the rest is zero,
  // and xr's zeros meet it).
  const auto tail = static_cast<__mmask16>(in % kLanes == 0 ? 0xffff : (1u << in % kLanes) - 1);
  v16 acc[M][8];
  for (int c = 0; c < M; ++c) {
    for (int r = 0; r < 8; ++r)
      acc[c][r] = v16{};
  }
  for (int64_t p = 0; p < in16; p += kLanes) {
    const __mmask16 mask = p + kLanes <= in ? 0xffff : tail;
    v16 xv[M];
    for (int c = 0; c < M; ++c)
      xv[c] = load(xr + c * in16 + p);
    for (int r = 0; r < 8; ++r) {
      const auto wr = reinterpret_cast<v16>(_mm512_maskz_loadu_ps(mask, w[r] + p));
      for (int c = 0; c < M; ++c)
        acc[c][r] += wr * xv[c];
    }
  }
  for (int c = 0; c < M; ++c) {
    const v16 sums = fold8(acc[c]);
    for (int r = 0; r < 8; ++r)
      rows[r][c0 + c] = sums[r];
  }
}

// y [out, 16] = W x for the first m (1 to 6) columns of x, gathered into xr [m, in16]: a
// thread with so few rows (a single stream) would otherwise pay product_tile's sixteen lanes of
// a column vector for each real column (stories260K: 10k tokens/s alone, 21k this way). Eight
// rows of W at a time, against the columns three at a time while those rows stay in L1. A row's
// sum is thus taken in another order than product_tile's (sixteen interleaved chains and a
// fold, not one chain): its outputs differ from a batched step's by float rounding.
void product_rows(const Projection& l, const float* xr, int64_t m, int64_t in16, float* y) {
  for (int64_t j = 0; j < l.out; j += 8) {
    // The last block's rows past `out` repeat row out - 1; their sums are dropped.
    const float* w[8];
    for (int r = 0; r < 8; ++r)
      w[r] = l.w + std::min(j + r, l.out - 1) * l.in;
    v16 rows[8] = {};  // zeros in the padding columns, as the tiles leave them for zero inputs
    int c0 = 0;
    for (; c0 + 3 <= m; c0 += 3)
      row_block<3>(w, xr + c0 * in16, l.in, in16, c0, rows);
    if (m - c0 == 2) row_block<2>(w, xr + c0 * in16, l.in, in16, c0, rows);
    if (m - c0 == 1) row_block<1>(w, xr + c0 * in16, l.in, in16, c0, rows);
    for (int64_t r = 0; r < std::min<int64_t>(8, l.out - j); ++r)
      store(y + (j + r) * kLanes, rows[r]);
  }
}

// Products with at most this many real columns take product_rows. Measured on stories260K
// (the fastest of 15 reps): 2, 4 and 6 columns a thread ran 2.1x, 1.3x and 1.0-1.1x the tiles'
// tokens/s; 8 ran 0.85x.
constexpr int64_t kRowColumns = 6;

// A product's input: x [in, mp], feature-major with m real columns; with few columns (m <=
// kRowColumns) also each column gathered contiguous for product_rows, rows [m, in16] with zeros
// from `in` to in16, once for all the products that read it (q, k and v; gate and up).
struct Input {
  const float* x = nullptr;
  int64_t in = 0, m = 0, mp = 0, in16 = 0;
  const float* rows = nullptr;  // null with more columns
};
Input input(const float* x, int64_t in, int64_t m, int64_t mp, std::vector<float>& rows) {
  Input a{x, in, m, mp, (in + kLanes - 1) / kLanes * kLanes};
  if (m > kRowColumns) return a;
  rows.assign(static_cast<size_t>(m * a.in16), 0.0f);
  for (int64_t p = 0; p < in; ++p) {
    for (int64_t c = 0; c < m; ++c)
      rows[static_cast<size_t>(c * a.in16 + p)] = x[p * mp + c];
  }
  a.rows = rows.data();
  return a;
}

// y [out, mp] = W x (+ b): product_rows for a few columns, else tiles. Four vectors of columns
// where a thread has that many rows: each weight then feeds four multiply-adds, and a model
// whose weights live in L3 or memory (llama-10m, 128 streams: +17% tokens/s) reads them half as
// often as with two.
void project(const Projection& l, const Input& a, float* y) {
  const int64_t mp = a.mp;
  if (a.rows != nullptr) {
    product_rows(l, a.rows, a.m, a.in16, y);
  } else {
    for (int64_t c = 0; c < mp;) {
      if (mp - c >= 4 * kLanes) {
        product_columns<4, 4>(l, a.x + c, mp, y + c);
        c += 4 * kLanes;
      } else if (mp - c >= 2 * kLanes) {
        product_columns<8, 2>(l, a.x + c, mp, y + c);
        c += 2 * kLanes;
      } else {
        product_columns<8, 1>(l, a.x + c, mp, y + c);
        c += kLanes;
      }
    }
  }
  if (l.b == nullptr) return;
  for (int64_t j = 0; j < l.out; ++j) {
    for (int64_t c = 0; c < mp; c += kLanes)
      store(y + j * mp + c, load(y + j * mp + c) + l.b[j]);
  }
}

// x += W a (+ b): the residual adds.
void project_add(const Projection& l, const Input& a, float* scratch, float* x) {
  project(l, a, scratch);
  for (int64_t i = 0; i < l.out * a.mp; i += kLanes)
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

// Rotary embedding (rotate-half layout, trainer/model/rotary.h) of `heads` heads of feature-major
// x [heads * D, mp], each column at its own position: cos/sin [D, mp] hold each column's table
// row, so that sixteen columns turn at once.
void rope_columns(float* x, int64_t heads, int64_t D, int64_t mp, const float* cos,
                  const float* sin) {
  const int64_t half = D / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* xh = x + h * D * mp;
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t c = 0; c < mp; c += kLanes) {
        const v16 a = load(xh + i * mp + c), b = load(xh + (i + half) * mp + c);
        store(xh + i * mp + c, a * load(cos + i * mp + c) - b * load(sin + i * mp + c));
        store(xh + (i + half) * mp + c,
              b * load(cos + (i + half) * mp + c) + a * load(sin + (i + half) * mp + c));
      }
    }
  }
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
    cos.resize(n(net.D));
    sin.resize(n(net.D));
    scores.resize(static_cast<size_t>(cpu_attention::scores_size(net.L)));
  }
  std::vector<float> x, h, q, k, v, attn, gate, up, out, cos, sin, scores;
  std::vector<float> rows;  // Input's gathered columns
};

// Rows [r0, r1) through the whole model into logits [R, V] (rows r0.. of `logits`).
void forward_rows(const Net& net, const int64_t* ids, const int64_t* positions,
                  const int64_t* tables, int64_t r0, int64_t r1, float* logits) {
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
  // Each column's rotary table row, for every layer (padding columns: position 0).
  for (int64_t c = 0; c < mp; ++c) {
    const int64_t pos = c < m ? positions[r0 + c] : 0;
    for (int64_t i = 0; i < net.D; ++i) {
      s.cos[static_cast<size_t>(i * mp + c)] = net.cos[pos * net.D + i];
      s.sin[static_cast<size_t>(i * mp + c)] = net.sin[pos * net.D + i];
    }
  }
  for (const auto& layer : net.layers) {
    rms_norm(s.x.data(), layer.attn_norm, net.C, mp, net.eps, s.h.data());
    const Input normed = input(s.h.data(), net.C, m, mp, s.rows);
    project(layer.q, normed, s.q.data());
    project(layer.k, normed, s.k.data());
    project(layer.v, normed, s.v.data());
    rope_columns(s.q.data(), net.H, net.D, mp, s.cos.data(), s.sin.data());
    rope_columns(s.k.data(), net.K, net.D, mp, s.cos.data(), s.sin.data());
    // Each column's attention reads its features where they are (stride mp).
    for (int64_t c = 0; c < m; ++c) {
      const bool more = c + 1 < m;
      cpu_attention::attend(
          layer.pool, tables + (r0 + c) * net.T, positions[r0 + c], s.q.data() + c, net.H,
          s.k.data() + c, s.v.data() + c, mp, s.scores.data(), s.attn.data() + c,
          more ? tables + (r0 + c + 1) * net.T : nullptr, more ? positions[r0 + c + 1] : -1);
    }
    project_add(layer.o, input(s.attn.data(), net.H * net.D, m, mp, s.rows), s.out.data(),
                s.x.data());
    rms_norm(s.x.data(), layer.mlp_norm, net.C, mp, net.eps, s.h.data());
    const Input mlp_in = input(s.h.data(), net.C, m, mp, s.rows);
    project(layer.gate, mlp_in, s.gate.data());
    project(layer.up, mlp_in, s.up.data());
    silu_mul(s.gate.data(), s.up.data(), net.F * mp);
    project_add(layer.down, input(s.gate.data(), net.F, m, mp, s.rows), s.out.data(), s.x.data());
  }
  rms_norm(s.x.data(), net.norm, net.C, mp, net.eps, s.h.data());
  project(net.head, input(s.h.data(), net.C, m, mp, s.rows), s.out.data());
  for (int64_t c = 0; c < m; ++c) {
    float* row = logits + (r0 + c) * net.V;
    for (int64_t j = 0; j < net.V; ++j)
      row[j] = s.out[static_cast<size_t>(j * mp + c)];
  }
}

FLYWHEEL_SIMD_END

}  // namespace

bool CpuDecodeStep::applies(const LlamaForCausalLM& model) {
  if (model->model->parameter_gather != nullptr ||
      !cpu_attention::available(model->config().head_dim, simd::kLanes)) {
    return false;
  }
  for (const auto& p : model->parameters()) {
    if (!plain_float(p)) return false;
  }
  return true;
}

CpuDecodeStep::CpuDecodeStep(LlamaForCausalLM& model, KVBlocks& blocks)
    : model_(model), blocks_(blocks) {
  TORCH_CHECK(applies(model) && blocks.kernel_layout(),
              "CpuDecodeStep: the model is not float32 on an AVX-512 CPU, or its KV blocks are "
              "not laid out for the CPU kernels");
  const auto positions = torch::arange(blocks.max_seq_len(), torch::kInt64).view({1, -1});
  auto [cos, sin] = rope_cos_sin(rope_inv_freq(model->config()), positions);
  cos_ = cos[0].contiguous();
  sin_ = sin[0].contiguous();
  for (const auto& p : model->parameters())
    weight_bytes_ += p.numel() * static_cast<int64_t>(sizeof(float));
}

bool CpuDecodeStep::worth(int64_t rows) const {
  // Weights that stay in a core's L2 between steps (stories260K: 1 MB) cost nothing to
  // re-read. Otherwise each thread with rows reads every weight once a step, and a thread
  // without one idles, where ATen's products split each weight matrix over all threads.
  // Measured on llama-10m (40 MB of weights), 2 threads, paired, fastest of 3-5 reps: 1, 4, 12
  // and 24 rows ran 1.4x, 1.26x, 1.23x and 1.22x the composed path's tokens/s. Half the threads
  // busy is thus the least known to win; fewer is untried (a machine with more cores).
  constexpr int64_t kCacheResident = int64_t{2} << 20;
  return weight_bytes_ <= kCacheResident || 2 * rows >= at::get_num_threads();
}

torch::Tensor CpuDecodeStep::run(const std::vector<int64_t>& ids,
                                 const std::vector<int64_t>& positions,
                                 const std::vector<int64_t>& tables) {
  const auto& config = model_->config();
  const auto rows = static_cast<int64_t>(ids.size());
  const int64_t T = blocks_.table_width();
  TORCH_CHECK(rows > 0 && rows == std::ssize(positions) && rows * T == std::ssize(tables),
              "CpuDecodeStep: ", rows, " rows with ", positions.size(), " positions and ",
              tables.size(), " table entries");
  for (int64_t r = 0; r < rows; ++r) {
    const auto id = ids[static_cast<size_t>(r)], pos = positions[static_cast<size_t>(r)];
    TORCH_CHECK(id >= 0 && id < config.vocab_size && pos >= 0 && pos < blocks_.max_seq_len(),
                "CpuDecodeStep: row ", r, " has token ", id, " at position ", pos);
    for (int64_t j = 0; j <= pos / blocks_.block_tokens(); ++j) {
      const auto block = tables[static_cast<size_t>(r * T + j)];
      TORCH_CHECK(block >= 0 && block < blocks_.blocks(), "CpuDecodeStep: row ", r, " reads block ",
                  block, " of ", blocks_.blocks());
    }
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
  net.L = blocks_.max_seq_len();
  net.T = T;
  net.eps = static_cast<float>(config.rms_norm_eps);
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
    l.pool = blocks_.cpu_pool(static_cast<int64_t>(i), config.sliding_window);
    net.layers.push_back(l);
  }
  // Kept from step to step: a fresh [R, V] every step would be pages mapped and faulted in
  // each time (it is past malloc's threshold for reusing freed memory).
  if (logits_.size(0) < rows) logits_ = torch::empty({rows, net.V}, torch::kFloat32);
  const auto logits = logits_.narrow(0, 0, rows);
  float* out = logits.data_ptr<float>();
  // One block of rows per thread, each through every layer on its own.
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    forward_rows(net, ids.data(), positions.data(), tables.data(), begin, end, out);
  });
  return logits;
}

}  // namespace flywheel
