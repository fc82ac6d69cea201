#include "trainer/train/step_plan.h"

#include <algorithm>
#include <cstddef>

#include "trainer/data/batching.h"

namespace flywheel {

std::vector<std::vector<int64_t>> rank_micro_batches(const std::vector<int64_t>& batch,
                                                     const std::vector<int64_t>& lengths,
                                                     int64_t micro_batch_size, int world_size,
                                                     int rank) {
  std::vector<int64_t> order = batch;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  const auto W = static_cast<size_t>(world_size);
  const size_t room = (order.size() + W - 1) / W;
  std::vector<int64_t> load(W, 0);
  std::vector<size_t> count(W, 0);
  std::vector<int64_t> mine;
  for (const auto example : order) {
    size_t best = W;
    for (size_t r = 0; r < W; ++r) {
      if (count[r] < room && (best == W || load[r] < load[best])) best = r;
    }
    load[best] += lengths[example];
    ++count[best];
    if (best == static_cast<size_t>(rank)) mine.push_back(example);
  }
  std::vector<std::vector<int64_t>> out;
  const auto micro = static_cast<size_t>(micro_batch_size);
  for (size_t i = 0; i < mine.size(); i += micro) {
    const auto end = std::min(mine.size(), i + micro);
    out.emplace_back(mine.begin() + static_cast<std::ptrdiff_t>(i),
                     mine.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return out;
}

StepPlan::StepPlan(std::vector<int64_t> lengths, const StepPlanOptions& options)
    : lengths_(std::move(lengths)),
      options_(options),
      global_batch_(options.micro_batch_size * options.accumulation * options.world_size) {
  const auto examples = static_cast<int64_t>(lengths_.size());
  steps_per_epoch_ = std::max<int64_t>(1, (examples + global_batch_ - 1) / global_batch_);
  total_steps_ = options.epochs * steps_per_epoch_;
  if (options.max_steps > 0) total_steps_ = std::min(total_steps_, options.max_steps);
}

const std::vector<int64_t>& StepPlan::batch(int64_t step) {
  const int64_t epoch = epoch_of(step);
  if (epoch != planned_epoch_) {
    epoch_batches_ = plan_epoch(lengths_, global_batch_, options_.seed, epoch,
                                options_.group_by_length, /*drop_last=*/false);
    planned_epoch_ = epoch;
  }
  return epoch_batches_[static_cast<size_t>(step % steps_per_epoch_)];
}

std::vector<std::vector<int64_t>> StepPlan::my_micro_batches(
    const std::vector<int64_t>& batch) const {
  return rank_micro_batches(batch, lengths_, options_.micro_batch_size, options_.world_size,
                            options_.rank);
}

}  // namespace flywheel
