// Which examples each optimizer step trains on, and which of them this rank runs.
//
// rank_micro_batches() is the part every loop shares: a step's examples (indices into a
// static dataset, or into the rollouts an RL loop just made) shared out among the ranks with
// balanced token counts, and each rank's share cut into micro-batches. StepPlan adds the
// epochs of a static, indexed dataset.
#pragma once

#include <cstdint>
#include <vector>

namespace flywheel {

// Rank `rank`'s micro-batches of `batch` (indices into `lengths`, the examples' token counts).
// The examples go out longest first, each to the rank with the fewest tokens so far that still
// has room for one (the lowest such rank on a tie), at most ceil(n / world_size) per rank: the
// same split on every rank, and no rank waits on one that got all the long examples (which a
// contiguous slice of a length-grouped batch would give rank 0). A rank's share, longest first,
// is cut into micro-batches of micro_batch_size, so a micro-batch holds similar lengths.
std::vector<std::vector<int64_t>> rank_micro_batches(const std::vector<int64_t>& batch,
                                                     const std::vector<int64_t>& lengths,
                                                     int64_t micro_batch_size, int world_size,
                                                     int rank);

struct StepPlanOptions {
  int64_t micro_batch_size = 1;
  int64_t accumulation = 1;  // micro-batches per rank per step
  int world_size = 1;
  int rank = 0;
  int64_t epochs = 1;
  int64_t max_steps = 0;  // > 0 caps the run
  uint64_t seed = 0;
  bool group_by_length = false;
};

// Epochs over a fixed set of examples, each a seeded shuffle (optionally length-grouped,
// trainer/data/batching.h) cut into global batches of micro x accumulation x world examples;
// the last batch of an epoch may be short.
class StepPlan {
 public:
  // `lengths`: one per example (length grouping uses them); the caller makes sure there is at
  // least one.
  StepPlan(std::vector<int64_t> lengths, const StepPlanOptions& options);

  int64_t global_batch() const { return global_batch_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t total_steps() const { return total_steps_; }
  int64_t accumulation() const { return options_.accumulation; }
  int64_t epoch_of(int64_t step) const { return step / steps_per_epoch_; }  // step is 0-based

  // The examples of step `step` (0-based), the same on every rank.
  const std::vector<int64_t>& batch(int64_t step);
  // This rank's micro-batches of `batch`.
  std::vector<std::vector<int64_t>> my_micro_batches(const std::vector<int64_t>& batch) const;

 private:
  std::vector<int64_t> lengths_;
  StepPlanOptions options_;
  int64_t global_batch_;
  int64_t steps_per_epoch_;
  int64_t total_steps_;
  int64_t planned_epoch_ = -1;
  std::vector<std::vector<int64_t>> epoch_batches_;
};

}  // namespace flywheel
