#include "trainer/rl/kl_controller.h"

#include <algorithm>

namespace flywheel {

KlController::KlController(const KlControllerOptions& options)
    : options_(options), value_(options.initial) {}

void KlController::update(double kl, int64_t responses) {
  if (options_.target <= 0) return;
  const double error = std::clamp(kl / options_.target - 1.0, -0.2, 0.2);
  value_ *= 1.0 + error * static_cast<double>(responses) / options_.horizon;
}

}  // namespace flywheel
