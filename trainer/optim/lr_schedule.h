// Learning-rate schedules with linear warmup, as Hugging Face's get_*_schedule_with_warmup:
// the rate for optimizer update k (0-based) is lr * f(k), with
//   warmup   f(k) = k / W                                  for k < W
//   constant f(k) = 1
//   linear   f(k) = max(0, (N - k) / (N - W))
//   cosine   f(k) = 0.5 (1 + cos(pi (k - W) / (N - W)))
// where N is the total number of updates and W the warmup updates.
#pragma once

#include <cstdint>
#include <string>

namespace flywheel {

class LrSchedule {
 public:
  // kind: constant | linear | cosine. warmup_steps > 0 wins over warmup_ratio, which gives
  // W = ceil(ratio * N).
  LrSchedule(std::string kind, double lr, int64_t total_steps, int64_t warmup_steps,
             double warmup_ratio);
  double at(int64_t step) const;
  int64_t warmup_steps() const { return warmup_; }

 private:
  std::string kind_;
  double lr_;
  int64_t total_;
  int64_t warmup_;
};

}  // namespace flywheel
