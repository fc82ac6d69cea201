#include "trainer/dist/grad_sync.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>

namespace flywheel {
namespace {

// Transient bucket buffers (reduce-to-owner, or a reduce dtype other than float32) alive at
// once: enough for one to travel while the next fills, small enough that a rank never holds
// much more than its shard.
constexpr size_t kMaxBucketsInFlight = 2;
// A ZeRO-3 unit is a whole decoder layer, far larger than a bucket: one travels while the next
// fills.
constexpr size_t kMaxUnitsInFlight = 1;

}  // namespace

// Runs after a parameter's AccumulateGrad node, i.e. once .grad holds this backward's sum.
class GradientSync::ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(GradientSync* sync, size_t param) : sync_(sync), param_(param) {}
  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    sync_->on_gradient(param_);
    return outputs;
  }

 private:
  GradientSync* sync_;
  size_t param_;
};

GradientSync::GradientSync(std::vector<torch::Tensor> params, Communicator& comm,
                           int64_t bucket_bytes, torch::ScalarType reduce_dtype,
                           std::optional<OwnerShards> owners, std::optional<UnitShards> units)
    : params_(std::move(params)),
      comm_(comm),
      reduce_dtype_(reduce_dtype),
      owners_(std::move(owners)),
      units_(std::move(units)) {
  std::vector<int64_t> flat_offset;  // of each parameter, all laid end to end
  int64_t total = 0;
  for (const auto& p : params_) {
    flat_offset.push_back(total);
    total += p.numel();
  }
  // Fill buckets from the last parameter back (backward's order); each bucket then lists its
  // parameters in forward order, so it is one contiguous range of the flat layout. Sizes count
  // float32 elements, what the buckets hold.
  bucket_of_.resize(params_.size());
  slot_.resize(params_.size());
  is_ready_.assign(params_.size(), false);
  int64_t bytes = 0;
  if (units_) {
    for (const auto& unit : units_->units) {
      buckets_.emplace_back();
      buckets_.back().params = unit;
      for (auto k : unit)
        bucket_of_[k] = buckets_.size() - 1;
    }
  }
  for (size_t k = params_.size(); !units_ && k-- > 0;) {
    const auto& p = params_[k];
    const int64_t nbytes = p.numel() * 4;
    const bool fits = !buckets_.empty() && bytes + nbytes <= bucket_bytes &&
                      params_[buckets_.back().params.front()].device() == p.device();
    if (!fits) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.insert(buckets_.back().params.begin(), k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += nbytes;
  }
  for (auto& b : buckets_) {
    for (auto k : b.params) {
      b.offset.push_back(b.numel);
      slot_[k] = b.numel;
      b.numel += params_[k].numel();
    }
    b.flat_begin = flat_offset[b.params.front()];
    const int64_t W = comm_.world_size();
    b.padded = (b.numel + W - 1) / W * W;
  }
  gradients_.resize(params_.size());
  if (!sharded()) {
    for (auto& b : buckets_) {
      const auto& first = params_[b.params.front()];
      b.flat = torch::zeros({b.numel}, first.options().dtype(torch::kFloat32));
      for (size_t j = 0; j < b.params.size(); ++j) {
        const auto& p = params_[b.params[j]];
        gradients_[b.params[j]] = b.flat.narrow(0, b.offset[j], p.numel()).view(p.sizes());
      }
    }
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(this, k)));
    accumulators_.push_back(std::move(acc));  // the hook lives as long as the node
  }
}

GradientSync::~GradientSync() {
  for (size_t k = 0; k < accumulators_.size(); ++k)
    accumulators_[k]->del_post_hook(hook_keys_[k]);
}

void GradientSync::arm() {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = true;
}

void GradientSync::on_gradient(size_t param) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& p = params_[param];
  torch::NoGradGuard no_grad;
  if (!sharded()) {
    // Into the float32 accumulator at once; the parameter keeps no gradient of its own.
    gradients_[param].add_(p.grad());
    p.mutable_grad() = torch::Tensor();
  }
  if (!armed_ || is_ready_[param]) return;
  is_ready_[param] = true;
  auto& b = buckets_[bucket_of_[param]];
  if (sharded()) {
    // Straight into this round's buffer of its bucket, which its first gradient allocates.
    take_gradient(b, param);
  }
  ++b.ready;
  launch_ready_buckets();
}

void GradientSync::take_gradient(Bucket& b, size_t param) {
  if (!b.filling.defined()) {
    const int64_t size = units_ ? b.padded : b.numel;
    b.filling = torch::empty({size}, params_[param].options().dtype(reduce_dtype_));
    if (size > b.numel) b.filling.narrow(0, b.numel, size - b.numel).zero_();
  }
  auto& p = params_[param];
  auto slot = b.filling.narrow(0, slot_[param], p.numel());
  if (p.grad().defined()) {
    slot.copy_(p.grad().reshape({-1}));
    p.mutable_grad() = torch::Tensor();
  } else {
    slot.zero_();  // no gradient this round
  }
}

void GradientSync::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
    launch(buckets_[next_launch_++]);
  }
}

void GradientSync::launch(Bucket& b) {
  torch::NoGradGuard no_grad;
  InFlight f{static_cast<size_t>(&b - buckets_.data()), b.flat, {}, {}};
  if (sharded()) {
    // The gradients that have not come in this round (finish() without them) are taken now.
    for (auto k : b.params) {
      if (!is_ready_[k]) take_gradient(b, k);
    }
    f.buffer = std::move(b.filling);
    b.filling = torch::Tensor();
  } else if (reduce_dtype_ != torch::kFloat32) {
    f.buffer = b.flat.to(reduce_dtype_);
  }
  if (comm_.world_size() == 1) {
    // Nothing to sum; the sharded gradient is the whole of it.
    f.part = f.buffer;
    if (sharded()) complete(f);
    return;
  }
  if (units_) {
    const int64_t part = b.padded / comm_.world_size();
    f.part = f.buffer.narrow(0, comm_.rank() * part, part);
    f.pending.push_back(comm_.reduce_scatter_in_place_async(f.buffer));
  } else if (!owners_) {
    f.pending.push_back(comm_.all_reduce_sum_async(f.buffer));
  } else {
    // Each owner's part of this bucket goes to that owner only.
    const int64_t S = owners_->shard_size, end = b.flat_begin + b.numel;
    for (int r = static_cast<int>(b.flat_begin / S); r < comm_.world_size() && r * S < end; ++r) {
      const int64_t lo = std::max(b.flat_begin, r * S), hi = std::min(end, (r + 1) * S);
      f.pending.push_back(
          comm_.reduce_sum_async(f.buffer.narrow(0, lo - b.flat_begin, hi - lo), r));
    }
  }
  in_flight_.push_back(std::move(f));
  const bool transient = sharded() || reduce_dtype_ != torch::kFloat32;
  const size_t most = units_ ? kMaxUnitsInFlight : kMaxBucketsInFlight;
  while (transient && in_flight_.size() > most) {
    complete(in_flight_.front());
    in_flight_.pop_front();
  }
}

void GradientSync::complete(InFlight& f) {
  for (auto& pending : f.pending)
    pending->wait();
  const auto& b = buckets_[f.bucket];
  torch::NoGradGuard no_grad;
  if (units_) {
    const auto n = units_->length[f.bucket];
    if (n > 0) {
      units_->shard.narrow(0, units_->offset[f.bucket], n).add_(f.part.narrow(0, 0, n));
    }
    return;
  }
  if (!owners_) {
    if (!f.buffer.is_same(b.flat)) b.flat.copy_(f.buffer);
    return;
  }
  // Add this rank's part of the bucket to its shard: flat elements [rank * S, (rank + 1) * S).
  const int64_t S = owners_->shard_size, mine = comm_.rank() * S;
  const int64_t lo = std::max(b.flat_begin, mine);
  const int64_t hi = std::min(b.flat_begin + b.numel, mine + owners_->shard.numel());
  if (lo < hi) {
    owners_->shard.narrow(0, lo - mine, hi - lo)
        .add_(f.buffer.narrow(0, lo - b.flat_begin, hi - lo));
  }
}

void GradientSync::finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& b : buckets_)
      b.ready = b.params.size();  // whatever has no gradient by now contributes zeros
    launch_ready_buckets();
    armed_ = false;
  }
  for (auto& f : in_flight_)
    complete(f);
  in_flight_.clear();
  for (auto& b : buckets_)
    b.ready = 0;
  is_ready_.assign(params_.size(), false);
  next_launch_ = 0;
}

void GradientSync::zero() {
  torch::NoGradGuard no_grad;
  if (owners_) {
    owners_->shard.zero_();
    return;
  }
  if (units_) {
    units_->shard.zero_();
    return;
  }
  for (auto& b : buckets_)
    b.flat.zero_();
}

}  // namespace flywheel
