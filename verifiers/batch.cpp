#include "verifiers/batch.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace flywheel {

std::vector<Verdict> verify_batch(const std::vector<VerifyJob>& jobs, const VerifyOptions& options,
                                  int threads) {
  std::vector<Verdict> verdicts(jobs.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), jobs.size()));
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++)
      verdicts[i] = verify(*jobs[i].verifier, jobs[i].input, options);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back(work);
  work();
  for (auto& t : pool)
    t.join();
  return verdicts;
}

}  // namespace flywheel
