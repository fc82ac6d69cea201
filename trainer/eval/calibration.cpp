#include "trainer/eval/calibration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

// The continued fraction of I_x(a, b) / (x^a (1 − x)^b / (a B(a, b))): 1 / (1 + d1 / (1 + d2 /
// (1 + ...))) with d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)) and
// d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m)), evaluated by the modified Lentz method.
// It converges quickly for x < (a + 1) / (a + b + 2).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEpsilon = 1e-16;
  constexpr int kMaxTerms = 100000;
  double f = 1, c = 1, d = 0;  // the value of 1 + d1/(1 + ...) so far, and Lentz's C and D
  for (int j = 1; j <= kMaxTerms; ++j) {
    const int m = j / 2;
    const double term = j % 2 == 1 ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
                                   : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 + term * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1 + term / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double step = c * d;
    f *= step;
    if (std::abs(step - 1) < kEpsilon) break;
  }
  return 1 / f;
}

}  // namespace

double regularized_incomplete_beta(double a, double b, double x) {
  if (!(a > 0 && b > 0 && x >= 0 && x <= 1))
    throw UserError("incomplete beta: need a, b > 0 and x in [0, 1], got a=" + std::to_string(a) +
                    " b=" + std::to_string(b) + " x=" + std::to_string(x));
  if (x == 0) return 0;
  if (x == 1) return 1;
  // The fraction converges fast on the left of the mean; on the right use
  // I_x(a, b) = 1 − I_{1−x}(b, a).
  if (x > (a + 1) / (a + b + 2)) return 1 - regularized_incomplete_beta(b, a, 1 - x);
  const double log_front =
      a * std::log(x) + b * std::log1p(-x) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
  return std::exp(log_front) / a * beta_continued_fraction(a, b, x);
}

double binomial_cdf(int64_t k, int64_t n, double p) {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  return regularized_incomplete_beta(static_cast<double>(n - k), static_cast<double>(k + 1), 1 - p);
}

double clopper_pearson_upper(int64_t k, int64_t n, double delta) {
  if (n < 1 || k < 0 || k > n || !(delta > 0 && delta < 1))
    throw UserError("Clopper-Pearson bound: need 0 <= k <= n, n >= 1 and delta in (0, 1)");
  if (k == n) return 1;
  // P(Binomial(n, p) ≤ k) falls from 1 at p = 0 to 0 at p = 1: bisect for where it is δ.
  double lo = 0, hi = 1;
  while (hi - lo > 1e-15) {
    const double mid = 0.5 * (lo + hi);
    (binomial_cdf(k, n, mid) > delta ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Calibration calibrate_threshold(const std::vector<JudgedItem>& items,
                                const CalibrationOptions& options) {
  if (!(options.alpha > 0 && options.alpha < 1))
    throw UserError("calibration: alpha must be in (0, 1), got " + std::to_string(options.alpha));
  if (!(options.delta > 0 && options.delta < 1))
    throw UserError("calibration: delta must be in (0, 1), got " + std::to_string(options.delta));
  if (options.min_items < 1) throw UserError("calibration: min-items must be >= 1");
  std::vector<JudgedItem> sorted = items;
  for (const auto& item : sorted)
    if (!std::isfinite(item.confidence))
      throw UserError("calibration: a confidence is not a finite number");
  std::sort(sorted.begin(), sorted.end(),
            [](const JudgedItem& a, const JudgedItem& b) { return a.confidence > b.confidence; });

  Calibration out;
  int64_t covered = 0, disagreements = 0;
  for (size_t i = 0; i < sorted.size();) {
    // Every item at this confidence is covered by the threshold equal to it.
    const double threshold = sorted[i].confidence;
    for (; i < sorted.size() && sorted[i].confidence == threshold; ++i) {
      ++covered;
      disagreements += !sorted[i].agrees;
    }
    if (covered < options.min_items) continue;
    ThresholdTest test{threshold, covered, disagreements,
                       clopper_pearson_upper(disagreements, covered, options.delta), false};
    // Bound ≤ α is the same event as P(Binomial(covered, α) ≤ disagreements) ≤ δ (the bound is
    // where that probability equals δ, and it falls as the rate grows); the latter is exact,
    // free of the bisection's last-digit error.
    test.accepted = binomial_cdf(disagreements, covered, options.alpha) <= options.delta;
    out.tests.push_back(test);
    if (!test.accepted) break;
    out.threshold = threshold;
  }
  return out;
}

ThresholdOutcome evaluate_threshold(const std::vector<JudgedItem>& items, double threshold) {
  ThresholdOutcome out;
  for (const auto& item : items) {
    ++out.items;
    if (item.confidence < threshold) continue;
    ++out.covered;
    out.agreements += item.agrees;
  }
  if (out.items > 0) out.coverage = static_cast<double>(out.covered) / out.items;
  if (out.covered > 0) out.agreement = static_cast<double>(out.agreements) / out.covered;
  return out;
}

Consensus simulated_annotator_confidence(const std::vector<Preference>& original_order,
                                         const std::vector<Preference>& swapped_order) {
  std::array<int64_t, 3> votes{};  // indexed by Preference, in the original order
  for (Preference p : original_order)
    ++votes[static_cast<size_t>(p)];
  for (Preference p : swapped_order) {
    const Preference original = p == Preference::kFirst    ? Preference::kSecond
                                : p == Preference::kSecond ? Preference::kFirst
                                                           : Preference::kTie;
    ++votes[static_cast<size_t>(original)];
  }
  const int64_t total = votes[0] + votes[1] + votes[2];
  if (total == 0) throw UserError("simulated annotators: no verdicts");
  const int64_t top = *std::max_element(votes.begin(), votes.end());
  Consensus out;
  out.confidence = static_cast<double>(top) / static_cast<double>(total);
  if (std::count(votes.begin(), votes.end(), top) == 1)
    out.majority =
        static_cast<Preference>(std::max_element(votes.begin(), votes.end()) - votes.begin());
  return out;
}

}  // namespace flywheel
