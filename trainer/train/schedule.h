// When a loop evaluates and checkpoints, and what an evaluation runs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
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

// An evaluation that rates the model at a step against the run's earlier steps (the arena,
// trainer/arena/run_arena.h), wired in by the caller so that the loops do not depend on it. Runs
// on rank 0 with the whole model readable: at the start, every `every` steps and at the end.
struct StepEvaluation {
  std::function<Metrics(int64_t step)> run;
  int64_t every = 0;
  // A resumed run at `step` forgets what the steps after it left (they are redone).
  std::function<void(int64_t step)> resume_at;
  // checkpoint.keep_best: the best-rated step so far (nullopt: none yet), whose checkpoint is
  // kept; null when the recipe keeps no best. Every evaluated step after 0 is then checkpointed.
  std::function<std::optional<int64_t>()> best_step;

  explicit operator bool() const { return static_cast<bool>(run); }
};

}  // namespace flywheel
