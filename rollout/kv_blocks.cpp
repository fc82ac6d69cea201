#include "rollout/kv_blocks.h"

#include <algorithm>

#include "rollout/cpu_attention.h"

namespace flywheel {

using torch::indexing::Slice;

KVBlocks::KVBlocks(const ModelConfig& config, int64_t blocks, int64_t block_tokens,
                   int64_t max_seq_len, torch::TensorOptions options)
    : refs_(static_cast<size_t>(blocks), 0),
      block_tokens_(block_tokens),
      max_seq_len_(max_seq_len) {
  TORCH_CHECK(blocks > 0 && block_tokens > 0 && max_seq_len > 0,
              "KVBlocks: sizes must be positive");
  const int64_t K = config.num_key_value_heads, B = block_tokens, D = config.head_dim;
  kernel_layout_ = options.device().is_cpu() &&
                   c10::typeMetaToScalarType(options.dtype()) == torch::kFloat32 &&
                   cpu_attention::available(D, B);
  const auto rows = std::vector<int64_t>{K, blocks + 1, B, D};
  const auto transposed = std::vector<int64_t>{K, blocks + 1, D, B};
  // Zeros, not empty: a batched attention reads (and masks) positions no sequence has written,
  // and a masked NaN would still poison the output (its weight is 0, but 0 x NaN is NaN).
  values_transposed_ = kernel_layout_ && cpu_attention::values_transposed(D);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    keys_.push_back(torch::zeros(kernel_layout_ ? transposed : rows, options));
    values_.push_back(torch::zeros(values_transposed_ ? transposed : rows, options));
  }
  release_all();
}

int64_t KVBlocks::bytes_for(const ModelConfig& config, int64_t blocks, int64_t block_tokens,
                            torch::Dtype dtype) {
  return (blocks + 1) * 2 * config.num_hidden_layers * config.num_key_value_heads * block_tokens *
         config.head_dim * static_cast<int64_t>(c10::elementSize(dtype));
}

int64_t KVBlocks::blocks_in(const ModelConfig& config, int64_t block_tokens, int64_t bytes,
                            torch::Dtype dtype) {
  return bytes / bytes_for(config, 0, block_tokens, dtype) - 1;
}

std::optional<int64_t> KVBlocks::allocate() {
  if (free_.empty()) return std::nullopt;
  const auto block = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(block)] = 1;
  return block;
}

void KVBlocks::share(int64_t block) {
  TORCH_CHECK(block >= 0 && block < blocks() && refs_[static_cast<size_t>(block)] > 0,
              "KVBlocks: block ", block, " is not in use");
  ++refs_[static_cast<size_t>(block)];
}

void KVBlocks::release(int64_t block) {
  TORCH_CHECK(block >= 0 && block < blocks() && refs_[static_cast<size_t>(block)] > 0,
              "KVBlocks: block ", block, " is not in use");
  if (--refs_[static_cast<size_t>(block)] == 0) free_.push_back(block);
}

void KVBlocks::release_all() {
  std::fill(refs_.begin(), refs_.end(), 0);
  free_.resize(refs_.size());
  // Highest first, so that allocate() hands out the lowest block.
  for (size_t i = 0; i < free_.size(); ++i)
    free_[i] = blocks() - 1 - static_cast<int64_t>(i);
}

void KVBlocks::copy_block(int64_t from, int64_t to) {
  // Whole blocks, whichever way they are stored.
  for (size_t l = 0; l < keys_.size(); ++l) {
    keys_[l].select(1, to).copy_(keys_[l].select(1, from));
    values_[l].select(1, to).copy_(values_[l].select(1, from));
  }
}

torch::Tensor KVBlocks::keys(int64_t layer) const {
  const auto& k = keys_[static_cast<size_t>(layer)];
  return kernel_layout_ ? k.transpose(2, 3) : k;
}

torch::Tensor KVBlocks::values(int64_t layer) const {
  const auto& v = values_[static_cast<size_t>(layer)];
  return values_transposed_ ? v.transpose(2, 3) : v;
}

cpu_attention::Pool KVBlocks::cpu_pool(int64_t layer, std::optional<int64_t> window) {
  TORCH_CHECK(kernel_layout_, "KVBlocks: not stored for the CPU kernels");
  const auto& k = keys_[static_cast<size_t>(layer)];
  return {k.data_ptr<float>(), values_[static_cast<size_t>(layer)].data_ptr<float>(),
          k.size(0),           k.size(1),
          block_tokens_,       k.size(2),
          window.value_or(0)};
}

namespace {

// Which keys [1, S] each query at `positions` [T, 1] attends: the ones at or before it, and
// within the window when there is one.
torch::Tensor causal_mask(const torch::Tensor& keys, const torch::Tensor& positions,
                          std::optional<int64_t> window) {
  auto mask = keys <= positions;
  if (window) mask = mask.logical_and(keys > positions - *window);
  return mask;
}

// The blocks `index` lists, end to end: [K, blocks x B, D].
torch::Tensor gather_blocks(const torch::Tensor& pool, const torch::Tensor& index) {
  // A pool stored transposed for the CPU kernels is gathered as stored, then transposed (an
  // index_select of the view would first copy the whole pool).
  const auto picked = pool.is_contiguous()
                          ? pool.index_select(1, index)
                          : pool.transpose(2, 3).index_select(1, index).transpose(2, 3);
  // [K, blocks, B, D]
  return picked.reshape({pool.size(0), -1, pool.size(3)});
}

}  // namespace

BlockAttention::BlockAttention(KVBlocks& blocks, torch::Tensor positions, torch::Tensor tables,
                               int64_t keys, std::vector<BlockSpan> spans,
                               std::optional<int64_t> sliding_window, bool allow_fused)
    : blocks_(blocks),
      kernel_(allow_fused && blocks.kernel_layout()),
      window_(sliding_window),
      spans_(std::move(spans)) {
  const int64_t B = blocks.block_tokens();
  const auto device = blocks.keys(0).device();
  const auto ints = torch::TensorOptions().dtype(torch::kInt64).device(device);
  if (positions.defined()) {
    rows_ = positions.size(0);
    keys_ = keys;
    TORCH_CHECK(tables.dim() == 2 && tables.size(0) == rows_ && keys_ > 0 &&
                    keys_ <= tables.size(1) * B && keys_ <= blocks.max_seq_len(),
                "BlockAttention: ", rows_, " rows over ", keys_, " keys with tables of ",
                tables.sizes());
    positions_ = positions;
    tables_ = tables;
    if (kernel_) {
      for (int64_t r = 0; r < rows_; ++r) {
        runs_.push_back({tables.data_ptr<int64_t>() + r * tables.size(1), r,
                         positions.data_ptr<int64_t>()[r], 1});
      }
    } else {
      // Where each row writes, and the blocks it reads, worked out on the device (a CUDA
      // graph replays these with the next step's positions and tables).
      write_block_ = tables.gather(1, positions.div(B, "floor").view({-1, 1})).view({-1});
      write_offset_ = positions.remainder(B);
      gather_ = tables.narrow(1, 0, KVBlocks::blocks_for(keys_, B)).reshape({-1});
      row_mask_ = causal_mask(torch::arange(keys_, ints).view({1, -1}), positions.view({-1, 1}),
                              sliding_window)
                      .view({rows_, 1, 1, keys_});
    }
  }
  for (const auto& s : spans_) {
    const int64_t S = s.start + s.count;
    TORCH_CHECK(s.count > 0 && S <= blocks.max_seq_len() &&
                    std::ssize(s.blocks) >= KVBlocks::blocks_for(S, B),
                "BlockAttention: a span of ", s.count, " tokens at ", s.start, " with ",
                s.blocks.size(), " blocks");
    if (kernel_) {
      runs_.push_back({s.blocks.data(), s.offset, s.start, s.count});
      continue;
    }
    std::vector<int64_t> where(static_cast<size_t>(2 * s.count));
    for (int64_t i = 0; i < s.count; ++i) {
      where[static_cast<size_t>(i)] = s.blocks[static_cast<size_t>((s.start + i) / B)];
      where[static_cast<size_t>(s.count + i)] = (s.start + i) % B;
    }
    span_write_.push_back(
        torch::tensor(where, torch::kInt64).to(device, /*non_blocking=*/true).view({2, s.count}));
    span_blocks_.push_back(
        torch::tensor(
            std::vector<int64_t>(s.blocks.begin(), s.blocks.begin() + KVBlocks::blocks_for(S, B)),
            torch::kInt64)
            .to(device, /*non_blocking=*/true));
    // Query i (position start + i) attends keys [0, start + i]; from 0 that is plain causal.
    torch::Tensor mask;
    if (s.start > 0 || sliding_window) {
      mask = causal_mask(torch::arange(S, ints).view({1, -1}),
                         torch::arange(s.start, S, ints).view({-1, 1}), sliding_window)
                 .view({1, 1, s.count, S});
    }
    span_masks_.push_back(mask);
  }
}

torch::Tensor BlockAttention::attend(int64_t layer, const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const torch::Tensor& /*mask*/) {
  auto pool_k = blocks_.keys(layer);  // [K, P + 1, B, D]
  auto pool_v = blocks_.values(layer);
  const int64_t K = pool_k.size(0), D = pool_k.size(3), H = q.size(1);
  // The output as [1, N, H, D] rows (returned transposed), which the decoder's output
  // projection then reads without a copy.
  auto out = torch::empty({1, q.size(2), H, D}, q.options());
  const auto heads_out = out.transpose(1, 2);  // [1, H, N, D]
  if (kernel_) {
    // Every token through the CPU kernel, reading and writing the blocks in place.
    const auto tokens = [](const torch::Tensor& x) { return x[0].transpose(0, 1).contiguous(); };
    const auto all_q = tokens(q), all_k = tokens(k), all_v = tokens(v);  // [N, H or K, D]
    cpu_attention::attend_runs(blocks_.cpu_pool(layer, window_), all_q.data_ptr<float>(),
                               all_k.data_ptr<float>(), all_v.data_ptr<float>(), H, runs_,
                               out.data_ptr<float>());
    return heads_out;
  }
  if (rows_ > 0) {
    // Row r's key and value [K, R, D] into its block at its position.
    pool_k.index_put_({Slice(), write_block_, write_offset_}, k[0].narrow(1, 0, rows_));
    pool_v.index_put_({Slice(), write_block_, write_offset_}, v[0].narrow(1, 0, rows_));
    // Each row's blocks end to end, [R, K, keys, D], then one query per row over them.
    const auto gathered = [&](const torch::Tensor& pool) {
      return gather_blocks(pool, gather_)
          .view({K, rows_, -1, D})
          .narrow(2, 0, keys_)
          .transpose(0, 1);
    };
    const auto o = grouped_attention(q.narrow(2, 0, rows_).permute({2, 1, 0, 3}), gathered(pool_k),
                                     gathered(pool_v), row_mask_);
    heads_out.narrow(2, 0, rows_).copy_(o.permute({2, 1, 0, 3}));
  }
  for (size_t i = 0; i < spans_.size(); ++i) {
    const auto& s = spans_[i];
    const auto& where = span_write_[i];
    pool_k.index_put_({Slice(), where[0], where[1]}, k[0].narrow(1, s.offset, s.count));
    pool_v.index_put_({Slice(), where[0], where[1]}, v[0].narrow(1, s.offset, s.count));
    const auto S = s.start + s.count;
    heads_out.narrow(2, s.offset, s.count)
        .copy_(grouped_attention(
            q.narrow(2, s.offset, s.count),
            gather_blocks(pool_k, span_blocks_[i]).narrow(1, 0, S).unsqueeze(0),
            gather_blocks(pool_v, span_blocks_[i]).narrow(1, 0, S).unsqueeze(0), span_masks_[i]));
  }
  return heads_out;
}

}  // namespace flywheel
