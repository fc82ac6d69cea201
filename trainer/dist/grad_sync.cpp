#include "trainer/dist/grad_sync.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>

namespace flywheel {

// Runs after a parameter's AccumulateGrad node, i.e. once .grad holds this backward's sum.
class GradientSync::ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(GradientSync* sync, size_t param) : sync_(sync), param_(param) {}
  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    sync_->mark_ready(param_);
    return outputs;
  }

 private:
  GradientSync* sync_;
  size_t param_;
};

GradientSync::GradientSync(std::vector<torch::Tensor> params, Communicator& comm,
                           int64_t bucket_bytes, std::optional<OwnerShards> owners)
    : params_(std::move(params)), comm_(comm), owners_(std::move(owners)) {
  std::vector<int64_t> flat_offset;  // of each parameter, all laid end to end
  int64_t total = 0;
  for (const auto& p : params_) {
    flat_offset.push_back(total);
    total += p.numel();
  }
  // Fill buckets from the last parameter back (backward's order); each bucket then lists its
  // parameters in forward order, so it is one contiguous range of the flat layout.
  bucket_of_.resize(params_.size());
  is_ready_.assign(params_.size(), false);
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    const auto nbytes = static_cast<int64_t>(p.nbytes());
    const bool fits = !buckets_.empty() && bytes + nbytes <= bucket_bytes &&
                      params_[buckets_.back().params.front()].options().type_equal(p.options());
    if (!fits) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().params.insert(buckets_.back().params.begin(), k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += nbytes;
  }
  for (auto& b : buckets_) {
    int64_t n = 0;
    for (auto k : b.params) {
      b.offset.push_back(n);
      n += params_[k].numel();
    }
    b.flat_begin = flat_offset[b.params.front()];
    b.flat = torch::zeros({n}, params_[b.params.front()].options());
  }
  if (comm_.world_size() == 1) return;  // nothing to overlap: finish() is all it takes
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

void GradientSync::mark_ready(size_t param) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_ || is_ready_[param]) return;
  is_ready_[param] = true;
  ++buckets_[bucket_of_[param]].ready;
  launch_ready_buckets();
}

void GradientSync::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
    launch(buckets_[next_launch_++]);
  }
}

void GradientSync::launch(Bucket& b) {
  torch::NoGradGuard no_grad;
  for (size_t j = 0; j < b.params.size(); ++j) {
    auto& p = params_[b.params[j]];
    auto slot = b.flat.narrow(0, b.offset[j], p.numel());
    if (p.grad().defined()) {
      slot.copy_(p.grad().reshape({-1}));
    } else {
      slot.zero_();
    }
    if (owners_) p.mutable_grad() = torch::Tensor();  // ZeRO-2: the bucket holds it now
  }
  if (!owners_) {
    b.pending.push_back(comm_.all_reduce_sum_async(b.flat));
    return;
  }
  // Each owner's part of this bucket goes to that owner only.
  const int64_t S = owners_->shard_size, end = b.flat_begin + b.flat.numel();
  for (int r = static_cast<int>(b.flat_begin / S); r < comm_.world_size() && r * S < end; ++r) {
    const int64_t lo = std::max(b.flat_begin, r * S), hi = std::min(end, (r + 1) * S);
    b.pending.push_back(comm_.reduce_sum_async(b.flat.narrow(0, lo - b.flat_begin, hi - lo), r));
  }
}

void GradientSync::finish() {
  if (comm_.world_size() == 1) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& b : buckets_)
      b.ready = b.params.size();  // whatever has no gradient by now contributes zeros
    launch_ready_buckets();
    armed_ = false;
  }
  for (auto& b : buckets_) {
    for (auto& pending : b.pending)
      pending->wait();
    b.pending.clear();
    b.ready = 0;
    if (owners_) {
      // Keep this rank's part of the bucket: flat elements [rank * S, (rank + 1) * S).
      const int64_t S = owners_->shard_size, mine = comm_.rank() * S;
      const int64_t lo = std::max(b.flat_begin, mine);
      const int64_t hi = std::min(b.flat_begin + b.flat.numel(), mine + owners_->shard.numel());
      if (lo < hi) {
        owners_->shard.narrow(0, lo - mine, hi - lo)
            .copy_(b.flat.narrow(0, lo - b.flat_begin, hi - lo));
      }
      continue;
    }
    for (size_t j = 0; j < b.params.size(); ++j) {
      auto& p = params_[b.params[j]];
      p.mutable_grad() = b.flat.narrow(0, b.offset[j], p.numel()).view_as(p);
    }
  }
  is_ready_.assign(params_.size(), false);
  next_launch_ = 0;
}

}  // namespace flywheel
