// When a loop evaluates and checkpoints, and what an evaluation runs.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "trainer/core/metrics_log.h"

namespace flywheel {

// Every `every` steps inside a run of `total` (0 = never). The last step is never due: the run
// ends with its own final evaluation and checkpoint.
class Periodic {
 public:
  Periodic(int64_t every, int64_t total) : every_(every), total_(total) {}
  bool due(int64_t step) const { return every_ > 0 && step < total_ && step % every_ == 0; }

 private:
  int64_t every_;
  int64_t total_;
};

// Held-out evaluation: several sources (the objective's own metrics, accuracy by generation
// wired in by the caller) merged into one map, a later source's key winning; an empty source
// function is skipped.
struct Evaluation {
  std::vector<std::function<Metrics()>> sources;
  Periodic when;

  Metrics run() const {
    Metrics out;
    for (const auto& source : sources) {
      if (!source) continue;
      for (const auto& [k, v] : source())
        out[k] = v;
    }
    return out;
  }
};

}  // namespace flywheel
