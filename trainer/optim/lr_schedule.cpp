#include "trainer/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "trainer/core/error.h"

namespace flywheel {

LrSchedule::LrSchedule(std::string kind, double lr, int64_t total_steps, int64_t warmup_steps,
                       double warmup_ratio)
    : kind_(std::move(kind)), lr_(lr), total_(total_steps) {
  if (kind_ != "constant" && kind_ != "linear" && kind_ != "cosine") {
    throw UserError("lr_scheduler: expected constant, linear or cosine, got '" + kind_ + "'");
  }
  warmup_ =
      warmup_steps > 0 ? warmup_steps : static_cast<int64_t>(std::ceil(warmup_ratio * total_steps));
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_) return lr_ * static_cast<double>(step) / static_cast<double>(warmup_);
  if (kind_ == "constant") return lr_;
  const double span = static_cast<double>(std::max<int64_t>(1, total_ - warmup_));
  const double progress = static_cast<double>(step - warmup_) / span;
  if (kind_ == "linear") return lr_ * std::max(0.0, 1.0 - progress);
  return lr_ * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
}

}  // namespace flywheel
