// A cooperative time bound for one verification. verify() arms it for the calling thread; the
// checkers' loops call check_deadline() between units of work (an IFEval instruction on one
// response variant, a parsed answer, an evaluation point), which throws once the bound has
// passed. The units themselves are bounded (linear scans, capped sizes), so a verification
// overruns its limit by at most one unit.
#pragma once

#include <stdexcept>

namespace flywheel::verifiers {

class DeadlineExceeded : public std::runtime_error {
 public:
  DeadlineExceeded() : std::runtime_error("time limit exceeded") {}
};

// Throws DeadlineExceeded when this thread's armed deadline has passed; no-op when none is.
void check_deadline();

// Arms a deadline `seconds` from now for this thread until destroyed (seconds <= 0: none).
class DeadlineScope {
 public:
  explicit DeadlineScope(double seconds);
  ~DeadlineScope();
  DeadlineScope(const DeadlineScope&) = delete;
  DeadlineScope& operator=(const DeadlineScope&) = delete;
};

}  // namespace flywheel::verifiers
