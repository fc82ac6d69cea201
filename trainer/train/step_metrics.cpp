#include "trainer/train/step_metrics.h"

#include <torch/torch.h>

#include <algorithm>

namespace flywheel {

StepMetrics::StepMetrics(std::vector<std::string> names)
    : names_(std::move(names)), totals_(2 + names_.size(), 0.0) {}

void StepMetrics::add(double loss, int64_t token_count, const std::map<std::string, double>& sums) {
  totals_[0] += loss;
  totals_[1] += static_cast<double>(token_count);
  for (const auto& [k, v] : sums) {
    const auto it = std::find(names_.begin(), names_.end(), k);
    TORCH_CHECK(it != names_.end(), "metric '", k, "' is not in metric_names()");
    totals_[2 + static_cast<size_t>(it - names_.begin())] += v;
  }
}

void StepMetrics::all_reduce(Communicator& comm) {
  totals_ = comm.all_reduce_sum(totals_);
}

Metrics StepMetrics::means(double normalizer) const {
  Metrics out;
  for (size_t k = 0; k < names_.size(); ++k)
    out[names_[k]] = totals_[2 + k] / normalizer;
  return out;
}

double max_over_ranks(double value, Communicator& comm) {
  // Each rank fills its own slot; the sum then holds every rank's value.
  std::vector<double> slots(static_cast<size_t>(comm.world_size()), 0.0);
  slots[static_cast<size_t>(comm.rank())] = value;
  const auto all = comm.all_reduce_sum(slots);
  return *std::max_element(all.begin(), all.end());
}

}  // namespace flywheel
