// Per-step metrics: one JSON object per line in RUN/metrics.jsonl, plus what a person sees —
// a live one-line progress display with ETA on a terminal, plain periodic lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>

namespace flywheel {

using Metrics = std::map<std::string, double>;

class MetricsLog {
 public:
  // mode: auto (bar on a terminal, lines otherwise) | bar | lines. With `append` (a run
  // resumed at checkpoint `first_step`) the existing file is continued from that step: its
  // lines of later steps, and a half-written line, are dropped. Otherwise it starts afresh.
  MetricsLog(const std::string& path, const std::string& mode, int64_t total_steps,
             int64_t print_every, int64_t first_step, bool append);
  ~MetricsLog();

  void train_step(int64_t step, const Metrics& metrics);
  void eval(int64_t step, const Metrics& metrics);  // keys are written as "eval/<key>"
  void message(const std::string& text);            // a line above the progress display

 private:
  void clear_bar();
  std::ofstream out_;
  bool bar_;
  int64_t total_steps_;
  int64_t print_every_;
  int64_t first_step_;
  bool bar_visible_ = false;
  std::chrono::steady_clock::time_point start_;
};

// "loss 0.1234 lr 2.00e-05 ..." for the keys that exist, in a fixed order, others sorted after.
std::string format_metrics(const Metrics& metrics);

}  // namespace flywheel
