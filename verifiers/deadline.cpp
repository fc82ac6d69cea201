#include "verifiers/deadline.h"

#include <chrono>
#include <optional>

namespace flywheel::verifiers {
namespace {

thread_local std::optional<std::chrono::steady_clock::time_point> deadline;

}  // namespace

void check_deadline() {
  if (deadline && std::chrono::steady_clock::now() > *deadline) throw DeadlineExceeded();
}

DeadlineScope::DeadlineScope(double seconds) {
  if (seconds > 0) {
    deadline = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   std::chrono::duration<double>(seconds));
  }
}

DeadlineScope::~DeadlineScope() {
  deadline.reset();
}

}  // namespace flywheel::verifiers
