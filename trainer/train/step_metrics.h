// A step's metrics: summed over this rank's micro-batches, then over every rank (one
// all-reduce), then divided by the step's normaliser. Every rank adds the same names in the
// same order, including a rank that had no examples in the step.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trainer/core/metrics_log.h"
#include "trainer/dist/communicator.h"

namespace flywheel {

// The largest of every rank's `value` (one all-reduce; every rank calls it).
double max_over_ranks(double value, Communicator& comm);

class StepMetrics {
 public:
  explicit StepMetrics(std::vector<std::string> names);

  // One micro-batch: its loss (already divided by the normaliser), its real tokens, and its
  // sums of the named metrics (every key must be one of `names`).
  void add(double loss, int64_t token_count, const std::map<std::string, double>& sums);
  // Sums over ranks; a collective, so every rank calls it.
  void all_reduce(Communicator& comm);

  double loss() const { return totals_[0]; }
  double token_count() const { return totals_[1]; }
  // Each named sum divided by `normalizer`.
  Metrics means(double normalizer) const;

 private:
  std::vector<std::string> names_;
  std::vector<double> totals_;  // loss, token count, then names_' sums
};

}  // namespace flywheel
