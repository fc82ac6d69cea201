#include "rollout/decode_step.h"

#if FLYWHEEL_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

torch::Tensor device_ints(const std::vector<int64_t>& values, const torch::Device& device) {
  return torch::tensor(values, torch::kInt64).to(device, /*non_blocking=*/true);
}

}  // namespace

torch::Tensor block_forward(LlamaForCausalLM& model, KVBlocks& blocks,
                            const std::vector<int64_t>& ids, const std::vector<int64_t>& positions,
                            int64_t rows, const std::vector<int64_t>& tables, int64_t keys,
                            std::vector<BlockSpan> spans) {
  const auto device = model->model->embed_tokens->weight.device();
  const auto input = device_ints(ids, device).view({1, -1});        // [1, N]
  const auto where = device_ints(positions, device).view({1, -1});  // [1, N]
  BlockAttention attention(
      blocks, rows > 0 ? where[0].narrow(0, 0, rows) : torch::Tensor(),
      rows > 0 ? device_ints(tables, device).view({rows, -1}) : torch::Tensor(), keys,
      std::move(spans), model->config().sliding_window);
  return model->model->forward(DecoderInput(input, where, {}, &attention))[0];  // [N, C]
}

#if FLYWHEEL_WITH_CUDA
// One graph per (rows, keys) bucket, all in one memory pool: replays never overlap, and each one's
// logits are copied out before the next runs.
struct DecodeStep::Graphs {
  std::map<std::pair<int64_t, int64_t>,
           std::pair<std::unique_ptr<at::cuda::CUDAGraph>, torch::Tensor>>
      by_bucket;  // by (rows, keys)
  at::cuda::MempoolId_t pool = {0, 0};
  std::vector<void*> addresses;  // the parameters' at capture
};
#else
struct DecodeStep::Graphs {};
#endif

DecodeStep::DecodeStep(LlamaForCausalLM& model, KVBlocks& blocks, int64_t rows, bool capture)
    : model_(model), blocks_(blocks), buckets_(buckets(rows)) {
  const auto device = model->model->embed_tokens->weight.device();
  const auto ints = torch::TensorOptions().dtype(torch::kInt64).device(device);
  ids_ = torch::zeros({buckets_.back()}, ints);
  positions_ = torch::zeros({buckets_.back()}, ints);
  tables_ = torch::full({buckets_.back(), blocks.table_width()}, blocks.scratch(), ints);
  if (capture) {
    if (!FLYWHEEL_WITH_CUDA || !device.is_cuda()) {
      throw UserError("rollout: CUDA graphs need a model on a GPU (this one is on " + device.str() +
                      ")");
    }
    graphs_ = std::make_unique<Graphs>();
  }
}

DecodeStep::~DecodeStep() = default;

std::vector<int64_t> DecodeStep::buckets(int64_t rows) {
  std::vector<int64_t> out;
  for (int64_t b = 1; b < std::min<int64_t>(rows, 32); b *= 2)
    out.push_back(b);
  for (int64_t b = 32; b < rows; b += 32)
    out.push_back(b);
  out.push_back(rows);
  return out;
}

int64_t DecodeStep::key_bucket(int64_t keys) const {
  int64_t bucket = 16 * blocks_.block_tokens();
  while (bucket < keys)
    bucket *= 2;
  return std::min(bucket, blocks_.max_seq_len());
}

torch::Tensor DecodeStep::forward(int64_t bucket, int64_t keys) {
  const auto ids = ids_.narrow(0, 0, bucket), positions = positions_.narrow(0, 0, bucket);
  const auto tables =
      tables_.narrow(0, 0, bucket).narrow(1, 0, KVBlocks::blocks_for(keys, blocks_.block_tokens()));
  BlockAttention attention(blocks_, positions, tables, keys, {}, model_->config().sliding_window,
                           /*allow_fused=*/false);
  const auto hidden = model_->model->forward(
      DecoderInput(ids.view({1, bucket}), positions.view({1, bucket}), {}, &attention));
  return model_->logits(hidden[0]);  // [B, V]
}

std::vector<void*> DecodeStep::parameter_addresses() const {
  std::vector<void*> out;
  for (const auto& p : model_->parameters())
    out.push_back(p.data_ptr());
  return out;
}

torch::Tensor DecodeStep::run(const std::vector<int64_t>& ids,
                              const std::vector<int64_t>& positions,
                              const std::vector<int64_t>& tables) {
  const auto rows = static_cast<int64_t>(ids.size());
  const int64_t T = blocks_.table_width();
  TORCH_CHECK(rows > 0 && rows == std::ssize(positions) && rows * T == std::ssize(tables) &&
                  rows <= buckets_.back(),
              "DecodeStep: ", rows, " rows for a step of at most ", buckets_.back());
  const auto bucket = *std::lower_bound(buckets_.begin(), buckets_.end(), rows);
  const auto keys = key_bucket(*std::max_element(positions.begin(), positions.end()) + 1);
  // The rows, then fillers up to the bucket: one upload each.
  std::vector<int64_t> padded_ids(ids), padded_positions(positions), padded_tables(tables);
  padded_ids.resize(static_cast<size_t>(bucket), 0);
  padded_positions.resize(static_cast<size_t>(bucket), 0);
  padded_tables.resize(static_cast<size_t>(bucket * T), blocks_.scratch());
  const auto upload = [&](torch::Tensor buffer, const std::vector<int64_t>& values) {
    buffer.copy_(torch::tensor(values, torch::kInt64).view(buffer.sizes()), /*non_blocking=*/true);
  };
  upload(ids_.narrow(0, 0, bucket), padded_ids);
  upload(positions_.narrow(0, 0, bucket), padded_positions);
  upload(tables_.narrow(0, 0, bucket), padded_tables);
#if FLYWHEEL_WITH_CUDA
  if (graphs_) return replay(bucket, keys);
#endif
  return forward(bucket, keys);
}

#if FLYWHEEL_WITH_CUDA
torch::Tensor DecodeStep::replay(int64_t bucket, int64_t keys) {
  auto& g = *graphs_;
  if (const auto now = parameter_addresses(); now != g.addresses) {
    g.by_bucket.clear();  // the parameters moved: what was captured reads stale memory
    g.addresses = now;
  }
  auto it = g.by_bucket.find({bucket, keys});
  if (it == g.by_bucket.end()) {
    // Captured on a side stream after one eager run there (kernels pick their algorithms and
    // workspaces outside the capture); the inputs are in place before either starts.
    c10::cuda::device_synchronize();
    const auto stream = c10::cuda::getStreamFromPool();
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    torch::Tensor logits;
    {
      const c10::cuda::CUDAStreamGuard guard(stream);
      forward(bucket, keys);
      stream.synchronize();
      if (g.pool.first == 0 && g.pool.second == 0) g.pool = at::cuda::graph_pool_handle();
      graph->capture_begin(g.pool);
      try {
        logits = forward(bucket, keys);
      } catch (...) {
        // End the capture, or the stream and the pool stay in capture mode for whatever
        // runs next.
        try {
          graph->capture_end();
        } catch (...) {
        }
        throw;
      }
      graph->capture_end();
    }
    c10::cuda::device_synchronize();
    ++captures_;
    it = g.by_bucket.emplace(std::make_pair(bucket, keys), std::make_pair(std::move(graph), logits))
             .first;
  }
  it->second.first->replay();
  return it->second.second;
}
#endif

}  // namespace flywheel
