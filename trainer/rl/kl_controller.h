// The coefficient of PPO's KL penalty: fixed, or adapted towards a target KL (Ziegler et al.,
// "Fine-Tuning Language Models from Human Preferences", 2019):
//   e = clip(KL / target - 1, -0.2, 0.2)        KL: the iteration's mean per-response KL
//   β ← β · (1 + e · n / horizon)              n: the iteration's responses
// so β grows while the policy drifts further than the target and shrinks while it stays closer,
// by at most 20% per `horizon` responses.
#pragma once

#include <cstdint>

namespace flywheel {

struct KlControllerOptions {
  double initial = 0.05;   // β at the start, >= 0
  double target = 0.0;     // > 0 adapts β; 0 keeps it fixed
  double horizon = 10000;  // > 0, responses over which β moves by at most 20%
};

class KlController {
 public:
  explicit KlController(const KlControllerOptions& options);

  double value() const { return value_; }
  // After an iteration whose responses had mean KL `kl`.
  void update(double kl, int64_t responses);
  // A resumed run's β.
  void restore(double value) { value_ = value; }

 private:
  KlControllerOptions options_;
  double value_;
};

}  // namespace flywheel
