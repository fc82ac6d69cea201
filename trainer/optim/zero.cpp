#include "trainer/optim/zero.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "trainer/checkpoint/safetensors.h"
#include "trainer/core/error.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

std::string shard_name(int rank, int world) {
  return "optimizer-shard-" + std::to_string(rank) + "-of-" + std::to_string(world) +
         ".safetensors";
}

}  // namespace

FlatLayout::FlatLayout(const std::vector<torch::Tensor>& params) {
  for (const auto& p : params) {
    offset.push_back(total);
    numel.push_back(p.numel());
    total += p.numel();
  }
}

std::vector<FlatLayout::Piece> FlatLayout::pieces(int64_t begin, int64_t end) const {
  std::vector<Piece> out;
  for (size_t k = 0; k < offset.size(); ++k) {
    const int64_t lo = std::max(begin, offset[k]);
    const int64_t hi = std::min(end, offset[k] + numel[k]);
    if (lo < hi) out.push_back({k, lo - offset[k], lo, hi - lo});
  }
  return out;
}

namespace {

// The elements of `t` (shaped like a parameter) from `offset`, `length` of them, flat.
torch::Tensor flat_piece(const torch::Tensor& t, int64_t offset, int64_t length) {
  return t.reshape({-1}).narrow(0, offset, length);
}

std::vector<torch::Tensor> tensors_of(
    const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  std::vector<torch::Tensor> ts;
  for (const auto& [name, p] : params)
    ts.push_back(p);
  return ts;
}

}  // namespace

ShardedAdamW::ShardedAdamW(std::vector<std::pair<std::string, torch::Tensor>> params,
                           AdamWOptions options, Communicator& comm, int64_t gather_bytes)
    : options_(options),
      comm_(comm),
      gather_bytes_(gather_bytes),
      layout_(tensors_of(params)),
      gathers_(true) {
  for (auto& [name, p] : params) {
    TORCH_CHECK(p.is_contiguous(), "sharded AdamW needs contiguous parameters: ", name);
    TORCH_CHECK(p.scalar_type() == params.front().second.scalar_type(),
                "sharded AdamW needs parameters of one dtype");
    names_.push_back(name);
    params_.push_back(p);
    decay_.push_back(p.dim() > 1);
  }
  const int64_t W = comm.world_size();
  size_ = (layout_.total + W - 1) / W;
  begin_ = std::min(layout_.total, comm.rank() * size_);
  end_ = std::min(layout_.total, begin_ + size_);
  for (const auto& piece : layout_.pieces(begin_, end_)) {
    segments_.push_back(
        {piece.param, piece.param_offset, piece.length, piece.flat_offset - begin_});
    values_.push_back(flat_piece(params_[piece.param].detach(), piece.param_offset, piece.length));
  }
  allocate_state();
}

ShardedAdamW::ShardedAdamW(std::vector<std::pair<std::string, torch::Tensor>> params,
                           std::vector<ShardSegment> segments, std::vector<torch::Tensor> values,
                           AdamWOptions options, Communicator& comm)
    : options_(options),
      comm_(comm),
      gather_bytes_(0),
      layout_(tensors_of(params)),
      segments_(std::move(segments)),
      values_(std::move(values)) {
  TORCH_CHECK(segments_.size() == values_.size(), "one value view per segment");
  for (auto& [name, p] : params) {
    names_.push_back(name);
    params_.push_back(p);
    decay_.push_back(p.dim() > 1);
  }
  allocate_state();
}

void ShardedAdamW::allocate_state() {
  for (const auto& seg : segments_) {
    TORCH_CHECK(seg.local == local_, "segments must be laid end to end");
    local_ += seg.length;
  }
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(params_.front().device());
  exp_avg_ = torch::zeros({local_}, f32);
  exp_avg_sq_ = torch::zeros({local_}, f32);
  grad_ = torch::zeros({local_}, f32);
  if (needs_master(params_.front().scalar_type())) {
    master_ = torch::empty({local_}, f32);
    reset_masters();
  }
}

void ShardedAdamW::reset_masters() {
  if (!master_.defined()) return;
  torch::NoGradGuard no_grad;
  for (size_t s = 0; s < segments_.size(); ++s)
    master_.narrow(0, segments_[s].local, segments_[s].length).copy_(values_[s]);
}

void ShardedAdamW::take_gradient(const std::vector<torch::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  for (const auto& seg : segments_) {
    grad_.narrow(0, seg.local, seg.length)
        .copy_(flat_piece(grads[seg.param], seg.param_offset, seg.length));
  }
}

double ShardedAdamW::clip_grad_norm(double max_norm) {
  torch::NoGradGuard no_grad;
  // The local norm as the replicated path computes each parameter's (float32, no copy of the
  // buffer), squared in double for the sum over ranks.
  const double local = grad_.norm().item<double>();
  auto square = torch::tensor({local * local}, torch::kFloat64);
  const double total = std::sqrt(comm_.all_reduce_sum_cpu(square).item<double>());
  if (max_norm > 0 && total > max_norm) grad_.mul_(max_norm / (total + 1e-6));
  return total;
}

void ShardedAdamW::step(double lr) {
  ++steps_;
  torch::NoGradGuard no_grad;
  for (size_t s = 0; s < segments_.size(); ++s) {
    const auto& seg = segments_[s];
    auto weights = master_.defined() ? master_.narrow(0, seg.local, seg.length) : values_[s];
    adamw_update(
        weights, grad_.narrow(0, seg.local, seg.length), exp_avg_.narrow(0, seg.local, seg.length),
        exp_avg_sq_.narrow(0, seg.local, seg.length), lr, decay_[seg.param], steps_, options_);
    if (master_.defined()) values_[s].copy_(weights);  // the compute copy, rounded
  }
  if (gathers_) gather_parameters();
}

void ShardedAdamW::gather_parameters() {
  // Every rank's slice goes to every rank in pieces of about gather_bytes: element `at` of each
  // slice, then the next, so no whole-model buffer is ever made.
  const auto& any = params_.front();
  const int64_t piece_size =
      std::max<int64_t>(1, gather_bytes_ / static_cast<int64_t>(any.element_size()));
  std::vector<torch::Tensor> all;
  for (int64_t at = 0; at < size_; at += piece_size) {
    const int64_t n = std::min(piece_size, size_ - at);
    auto mine = torch::zeros({n}, any.options());
    for (const auto& piece : layout_.pieces(begin_ + at, std::min(end_, begin_ + at + n))) {
      mine.narrow(0, piece.flat_offset - begin_ - at, piece.length)
          .copy_(flat_piece(params_[piece.param].detach(), piece.param_offset, piece.length));
    }
    comm_.all_gather(all, mine);
    for (size_t r = 0; r < all.size(); ++r) {
      const int64_t from = static_cast<int64_t>(r) * size_ + at;
      for (const auto& piece : layout_.pieces(from, std::min(layout_.total, from + n))) {
        flat_piece(params_[piece.param].detach(), piece.param_offset, piece.length)
            .copy_(all[r].narrow(0, piece.flat_offset - from, piece.length));
      }
    }
  }
}

void ShardedAdamW::save_shard(const std::string& dir) const {
  // Each segment as {flat offset, length}: where its elements go in the whole-model vector.
  std::vector<int64_t> where;
  for (const auto& seg : segments_) {
    where.push_back(layout_.offset[seg.param] + seg.param_offset);
    where.push_back(seg.length);
  }
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"step", torch::tensor(steps_, torch::kInt64)},
      {"segments", torch::tensor(where, torch::kInt64).view({-1, 2})},
      {"total", torch::tensor(layout_.total, torch::kInt64)},
      {"exp_avg", exp_avg_.cpu()},
      {"exp_avg_sq", exp_avg_sq_.cpu()}};
  if (master_.defined()) tensors.emplace_back("master", master_.cpu());
  write_safetensors((fs::path(dir) / shard_name(comm_.rank(), comm_.world_size())).string(),
                    tensors);
}

void ShardedAdamW::load_state(const std::map<std::string, torch::Tensor>& state,
                              const std::string& where) {
  torch::NoGradGuard no_grad;
  auto find = [&](const std::string& key) {
    const auto it = state.find(key);
    if (it == state.end()) throw UserError(where + ": missing optimizer tensor '" + key + "'");
    return it->second;
  };
  steps_ = find("step").item<int64_t>();
  // An fp32 run's state has no masters: its weights (already loaded) are the masters.
  const bool saved_masters = master_.defined() && state.count(names_.front() + ".master");
  if (!saved_masters) reset_masters();
  for (size_t s = 0; s < segments_.size(); ++s) {
    const auto& seg = segments_[s];
    const auto& name = names_[seg.param];
    std::vector<std::pair<std::string, torch::Tensor>> parts = {{".exp_avg", exp_avg_},
                                                                {".exp_avg_sq", exp_avg_sq_}};
    if (saved_masters) parts.emplace_back(".master", master_);
    for (const auto& [suffix, dst] : parts) {
      const auto src = find(name + suffix);
      if (src.numel() != layout_.numel[seg.param]) {
        throw UserError(where + ": optimizer tensor '" + name + suffix + "' has the wrong size");
      }
      dst.narrow(0, seg.local, seg.length).copy_(flat_piece(src, seg.param_offset, seg.length));
    }
    // The compute copy of a stage-3 shard is the saved master, rounded (as after a step).
    if (saved_masters && !gathers_) values_[s].copy_(master_.narrow(0, seg.local, seg.length));
  }
}

std::map<std::string, torch::Tensor> read_optimizer_state(
    const std::string& dir, const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  std::map<std::string, torch::Tensor> state;
  const fs::path replicated = fs::path(dir) / "optimizer.safetensors";
  if (fs::exists(replicated)) {
    SafetensorsFile f(replicated.string());
    for (const auto& e : f.entries())
      state[e.name] = f.tensor(e.name);
    return state;
  }
  // Shards: find W from the file names, then place every shard's slices.
  std::vector<fs::path> shards;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.rfind("optimizer-shard-", 0) == 0) shards.push_back(e.path());
  }
  if (shards.empty()) throw UserError(dir + ": no optimizer state (optimizer*.safetensors)");
  std::vector<torch::Tensor> ts;
  for (const auto& [name, p] : params)
    ts.push_back(p);
  const FlatLayout layout(ts);
  // Whole-model vectors of each saved quantity; masters only when every shard has them.
  std::map<std::string, torch::Tensor> flat;
  for (const char* key : {"exp_avg", "exp_avg_sq", "master"})
    flat[key] = torch::zeros({layout.total}, torch::kFloat32);
  int64_t covered = 0, step = -1, with_masters = 0;
  for (const auto& path : shards) {
    SafetensorsFile f(path.string());
    const auto where = path.string();
    for (const char* key : {"step", "segments", "total", "exp_avg", "exp_avg_sq"}) {
      if (!f.contains(key)) throw UserError(where + ": missing tensor '" + key + "'");
    }
    if (f.tensor("total").item<int64_t>() != layout.total) {
      throw UserError(where + ": written for " + std::to_string(f.tensor("total").item<int64_t>()) +
                      " parameters, the model has " + std::to_string(layout.total));
    }
    const auto segments = f.tensor("segments").to(torch::kInt64);
    if (segments.dim() != 2 || segments.size(1) != 2) {
      throw UserError(where + ": tensor 'segments' must be [n, 2]");
    }
    int64_t local = 0;
    for (int64_t i = 0; i < segments.size(0); ++i) {
      const int64_t b = segments[i][0].item<int64_t>(), n = segments[i][1].item<int64_t>();
      if (b < 0 || n < 0 || b + n > layout.total) {
        throw UserError(where + ": segment " + std::to_string(i) + " lies outside the model");
      }
      local += n;
    }
    const auto s = f.tensor("step").item<int64_t>();
    if (step >= 0 && s != step) throw UserError(where + ": shards from different steps");
    step = s;
    for (const char* key : {"exp_avg", "exp_avg_sq", "master"}) {
      if (!f.contains(key)) continue;
      if (f.entry(key).shape != std::vector<int64_t>{local}) {
        throw UserError(where + ": tensor '" + key + "' does not match the shard's segments");
      }
      const auto values = f.tensor(key);
      for (int64_t i = 0, at = 0; i < segments.size(0); ++i) {
        const int64_t b = segments[i][0].item<int64_t>(), n = segments[i][1].item<int64_t>();
        flat[key].narrow(0, b, n).copy_(values.narrow(0, at, n));
        at += n;
      }
    }
    with_masters += f.contains("master") ? 1 : 0;
    covered += local;
  }
  if (covered != layout.total) {
    throw UserError(dir + ": the optimizer shards cover " + std::to_string(covered) + " of " +
                    std::to_string(layout.total) + " elements (a shard is missing)");
  }
  state["step"] = torch::tensor(step, torch::kInt64);
  if (with_masters != static_cast<int64_t>(shards.size())) flat.erase("master");
  for (size_t k = 0; k < params.size(); ++k) {
    const auto& [name, p] = params[k];
    for (const auto& [key, values] : flat)
      state[name + "." + key] = values.narrow(0, layout.offset[k], layout.numel[k]).view_as(p);
  }
  return state;
}

}  // namespace flywheel
