// Scoring many responses at once on a pool of threads, so verification never holds up the RL
// loop: rows are handed out one at a time to `threads` workers (row costs differ by orders of
// magnitude between a bare number and a megabyte of LaTeX), and verdicts come back in order.
#pragma once

#include <vector>

#include "verifiers/verifier.h"

namespace flywheel {

struct VerifyJob {
  const VerifierInfo* verifier = nullptr;
  VerifyInput input;
};

// threads <= 0: one per hardware thread.
std::vector<Verdict> verify_batch(const std::vector<VerifyJob>& jobs, const VerifyOptions& options,
                                  int threads = 0);

}  // namespace flywheel
