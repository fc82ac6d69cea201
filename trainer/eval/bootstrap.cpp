#include "trainer/eval/bootstrap.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <random>
#include <thread>

namespace flywheel {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<int32_t> resampling_units(const BattleLog& log, ResampleUnit unit, int32_t* units) {
  const auto& battles = log.battles();
  std::vector<int32_t> out(battles.size());
  if (unit == ResampleUnit::kBattle) {
    std::iota(out.begin(), out.end(), 0);
    *units = static_cast<int32_t>(battles.size());
  } else {
    for (size_t b = 0; b < battles.size(); ++b)
      out[b] = battles[b].prompt;
    *units = log.prompts();
  }
  return out;
}

std::vector<int32_t> draw_unit_counts(int32_t units, uint64_t seed, int round) {
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(round))));
  std::vector<int32_t> counts(units, 0);
  for (int32_t k = 0; k < units; ++k) {
    // Lemire's multiply-shift maps 64 random bits onto [0, units) (bias < units / 2^64).
    const auto u = static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * units) >> 64);
    ++counts[u];
  }
  return counts;
}

BootstrapResult bootstrap_ratings(const Rater& rater, const BootstrapOptions& options) {
  if (options.rounds < 0) throw UserError("bootstrap: the number of rounds must be >= 0");
  const int rounds = options.rounds;
  std::vector<RatingFit> fits(rounds);
  std::atomic<int> next{0};
  std::vector<std::exception_ptr> errors(rounds);
  auto work = [&] {
    for (int r; (r = next++) < rounds;) {
      try {
        fits[r] = rater.fit(draw_unit_counts(rater.units(), options.seed, r));
      } catch (...) {  // rethrown on the calling thread below
        errors[r] = std::current_exception();
      }
    }
  };
  const int threads = std::clamp(
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency()),
      1, std::max(rounds, 1));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back(work);
  work();
  for (auto& t : pool)
    t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }

  BootstrapResult out;
  for (RatingFit& f : fits) {
    out.capped_rounds += f.capped;
    out.anchor_missing_rounds += f.anchor_missing;
    out.unconverged_rounds += !f.converged;
    out.ratings.push_back(std::move(f.rating));
    out.style.push_back(f.style);
  }
  return out;
}

double percentile(std::vector<double> values, double q) {
  std::erase_if(values, [](double v) { return std::isnan(v); });
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double h = (values.size() - 1) * q;
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= values.size()) return values.back();
  return values[lo] + (h - lo) * (values[lo + 1] - values[lo]);
}

}  // namespace flywheel
