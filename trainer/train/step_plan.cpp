#include "trainer/train/step_plan.h"

#include <algorithm>
#include <cstddef>

#include "trainer/data/batching.h"

namespace flywheel {

std::vector<std::vector<int64_t>> rank_micro_batches(const std::vector<int64_t>& batch,
                                                     int64_t micro_batch_size, int64_t accumulation,
                                                     int rank) {
  std::vector<std::vector<int64_t>> out;
  const auto micro = static_cast<size_t>(micro_batch_size);
  const auto first = static_cast<size_t>(rank * accumulation) * micro;
  const auto last = std::min(batch.size(), first + static_cast<size_t>(accumulation) * micro);
  for (size_t i = first; i < last; i += micro) {
    const auto end = std::min(last, i + micro);
    out.emplace_back(batch.begin() + static_cast<std::ptrdiff_t>(i),
                     batch.begin() + static_cast<std::ptrdiff_t>(end));
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
  return rank_micro_batches(batch, options_.micro_batch_size, options_.accumulation, options_.rank);
}

}  // namespace flywheel
