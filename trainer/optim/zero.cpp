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

ShardedAdamW::ShardedAdamW(std::vector<std::pair<std::string, torch::Tensor>> params,
                           AdamWOptions options, Communicator& comm, int64_t gather_bytes)
    : options_(options), comm_(comm), gather_bytes_(gather_bytes), layout_([&] {
        std::vector<torch::Tensor> ts;
        for (auto& [name, p] : params)
          ts.push_back(p);
        return ts;
      }()) {
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
  mine_ = layout_.pieces(begin_, end_);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(params_.front().device());
  exp_avg_ = torch::zeros({end_ - begin_}, f32);
  exp_avg_sq_ = torch::zeros({end_ - begin_}, f32);
  grad_ = torch::zeros({end_ - begin_}, f32);
  if (needs_master(params_.front().scalar_type())) {
    master_ = torch::empty({end_ - begin_}, f32);
    reset_masters();
  }
}

torch::Tensor ShardedAdamW::piece_of(const torch::Tensor& t, const FlatLayout::Piece& piece) const {
  return t.reshape({-1}).narrow(0, piece.param_offset, piece.length);
}

void ShardedAdamW::reset_masters() {
  if (!master_.defined()) return;
  torch::NoGradGuard no_grad;
  for (const auto& piece : mine_) {
    master_.narrow(0, piece.flat_offset - begin_, piece.length)
        .copy_(piece_of(params_[piece.param].detach(), piece));
  }
}

void ShardedAdamW::take_gradient(const std::vector<torch::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  for (const auto& piece : mine_) {
    grad_.narrow(0, piece.flat_offset - begin_, piece.length)
        .copy_(piece_of(grads[piece.param], piece));
  }
}

double ShardedAdamW::clip_grad_norm(double max_norm) {
  torch::NoGradGuard no_grad;
  // The slice's norm as the replicated path computes each parameter's (float32, no copy of
  // the slice), squared in double for the sum over ranks.
  const double local = grad_.norm().item<double>();
  auto square = torch::tensor({local * local}, torch::kFloat64);
  const double total = std::sqrt(comm_.all_reduce_sum_cpu(square).item<double>());
  if (max_norm > 0 && total > max_norm) grad_.mul_(max_norm / (total + 1e-6));
  return total;
}

void ShardedAdamW::step(double lr) {
  ++steps_;
  torch::NoGradGuard no_grad;
  for (const auto& piece : mine_) {
    const int64_t at = piece.flat_offset - begin_;
    auto weights = master_.defined() ? master_.narrow(0, at, piece.length)
                                     : piece_of(params_[piece.param].detach(), piece);
    adamw_update(weights, grad_.narrow(0, at, piece.length), exp_avg_.narrow(0, at, piece.length),
                 exp_avg_sq_.narrow(0, at, piece.length), lr, decay_[piece.param], steps_,
                 options_);
  }
  // Every rank's slice (the masters rounded, for low-precision parameters) goes to every
  // rank in pieces of about gather_bytes: element `at` of each slice, then the next, so no
  // whole-model buffer is ever made.
  const auto& any = params_.front();
  const int64_t piece_size =
      std::max<int64_t>(1, gather_bytes_ / static_cast<int64_t>(any.element_size()));
  std::vector<torch::Tensor> all;
  for (int64_t at = 0; at < size_; at += piece_size) {
    const int64_t n = std::min(piece_size, size_ - at);
    auto mine = torch::zeros({n}, any.options());
    for (const auto& piece : layout_.pieces(begin_ + at, std::min(end_, begin_ + at + n))) {
      const auto dst = mine.narrow(0, piece.flat_offset - begin_ - at, piece.length);
      if (master_.defined()) {
        dst.copy_(master_.narrow(0, piece.flat_offset - begin_, piece.length));
      } else {
        dst.copy_(piece_of(params_[piece.param], piece));
      }
    }
    comm_.all_gather(all, mine);
    for (size_t r = 0; r < all.size(); ++r) {
      const int64_t from = static_cast<int64_t>(r) * size_ + at;
      for (const auto& piece : layout_.pieces(from, std::min(layout_.total, from + n))) {
        piece_of(params_[piece.param].detach(), piece)
            .copy_(all[r].narrow(0, piece.flat_offset - from, piece.length));
      }
    }
  }
}

void ShardedAdamW::save_shard(const std::string& dir) const {
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"step", torch::tensor(steps_, torch::kInt64)},
      {"range", torch::tensor(std::vector<int64_t>{begin_, end_}, torch::kInt64)},
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
  for (const auto& piece : mine_) {
    const auto at = piece.flat_offset - begin_;
    const auto& name = names_[piece.param];
    std::vector<std::pair<std::string, torch::Tensor>> parts = {{".exp_avg", exp_avg_},
                                                                {".exp_avg_sq", exp_avg_sq_}};
    if (saved_masters) parts.emplace_back(".master", master_);
    for (const auto& [suffix, dst] : parts) {
      const auto src = find(name + suffix);
      if (src.numel() != layout_.numel[piece.param]) {
        throw UserError(where + ": optimizer tensor '" + name + suffix + "' has the wrong size");
      }
      dst.narrow(0, at, piece.length).copy_(piece_of(src, piece));
    }
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
    for (const char* key : {"step", "range", "total", "exp_avg", "exp_avg_sq"}) {
      if (!f.contains(key)) throw UserError(where + ": missing tensor '" + key + "'");
    }
    if (f.tensor("total").item<int64_t>() != layout.total) {
      throw UserError(where + ": written for " + std::to_string(f.tensor("total").item<int64_t>()) +
                      " parameters, the model has " + std::to_string(layout.total));
    }
    const auto range = f.tensor("range");
    const int64_t b = range[0].item<int64_t>(), e = range[1].item<int64_t>();
    if (b < 0 || e < b || e > layout.total) throw UserError(where + ": inconsistent shard range");
    const auto s = f.tensor("step").item<int64_t>();
    if (step >= 0 && s != step) throw UserError(where + ": shards from different steps");
    step = s;
    for (const char* key : {"exp_avg", "exp_avg_sq", "master"}) {
      if (!f.contains(key)) continue;
      if (f.entry(key).shape != std::vector<int64_t>{e - b}) {
        throw UserError(where + ": tensor '" + key + "' does not match the shard range");
      }
      flat[key].narrow(0, b, e - b).copy_(f.tensor(key));
    }
    with_masters += f.contains("master") ? 1 : 0;
    covered += e - b;
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
