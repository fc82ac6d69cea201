// Selective evaluation with a guarantee of human agreement (Jung et al. 2024, "Trust or
// Escalate: LLM Judges with Provable Guarantees for Human Agreement"). A judge's verdict is
// trusted only when its confidence is at least a threshold λ (otherwise the item is escalated
// to a stronger judge or a person). λ is calibrated on items with human labels so that
//
//   P( P(judge agrees with humans | confidence ≥ λ) ≥ 1 − α ) ≥ 1 − δ
//
// over the draw of the calibration set: candidate thresholds are the calibration confidences,
// tested from the strictest to the loosest (fixed-sequence testing, so no multiplicity
// correction is needed); at each, the null hypothesis "the disagreement rate above λ exceeds α"
// is rejected when the exact (Clopper–Pearson) upper 1 − δ confidence bound on that rate is at
// most α; testing stops at the first threshold not rejected, and the loosest rejected one is λ.
// A threshold is only tested once at least `min_items` calibration items reach it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace flywheel {

// ---- the exact binomial bound ----

// The regularized incomplete beta function I_x(a, b) (a, b > 0, x ∈ [0, 1]): its continued
// fraction (DLMF 8.17.22), evaluated on the side of x where it converges fast.
double regularized_incomplete_beta(double a, double b, double x);

// P(X ≤ k) for X ~ Binomial(n, p), exactly: I_{1−p}(n − k, k + 1).
double binomial_cdf(int64_t k, int64_t n, double p);

// The one-sided Clopper–Pearson upper 1 − δ confidence bound on a rate with k events in n
// trials: the p at which P(Binomial(n, p) ≤ k) = δ (the beta distribution's quantile
// B⁻¹(1 − δ; k + 1, n − k)), by bisection to within 1e-15; 1 when k = n. For k = 0 it is
// 1 − δ^(1/n).
double clopper_pearson_upper(int64_t k, int64_t n, double delta);

// ---- calibrating the threshold ----

struct JudgedItem {
  double confidence = 0;  // the judge's confidence in its verdict
  bool agrees = false;    // the verdict matches the human label
};

struct CalibrationOptions {
  double alpha = 0.1;      // tolerated disagreement rate among trusted items
  double delta = 0.1;      // tolerated probability that the guarantee fails
  int64_t min_items = 30;  // items a threshold must cover before it is tested
};

// One tested threshold.
struct ThresholdTest {
  double threshold = 0;
  int64_t covered = 0;        // items with confidence ≥ threshold
  int64_t disagreements = 0;  // of those, the ones the judge got wrong
  double upper_bound = 0;     // Clopper–Pearson upper bound on their disagreement rate
  bool accepted = false;      // upper_bound ≤ α
};

struct Calibration {
  std::optional<double> threshold;   // the loosest accepted λ; none when the first test fails
  std::vector<ThresholdTest> tests;  // in the order tested, through the first failure
};

// UserError when α or δ is outside (0, 1) or min_items < 1.
Calibration calibrate_threshold(const std::vector<JudgedItem>& items,
                                const CalibrationOptions& options);

// How a threshold does on a set of items: the share trusted and their agreement rate.
struct ThresholdOutcome {
  int64_t items = 0, covered = 0, agreements = 0;
  double coverage = 0;   // covered / items
  double agreement = 0;  // agreements / covered (0 when nothing is covered)
};
ThresholdOutcome evaluate_threshold(const std::vector<JudgedItem>& items, double threshold);

// ---- confidence from simulated annotators ----

// A pairwise verdict about responses shown in the order (first, second).
enum class Preference { kFirst, kSecond, kTie };

struct Consensus {
  Preference majority = Preference::kTie;
  double confidence = 0;  // the share of verdicts that agree with the majority
};

// The paper's Simulated Annotators confidence, in its simplest form: N verdicts of one judge
// (different in-context annotators or samples) on the pair in its original order and N on the
// swapped pair — a swapped verdict's kFirst is a vote for the original second response, which
// makes the confidence penalize position bias too. The majority is the verdict with the most
// votes; when several share the most votes the judge is undecided: kTie, with that share as
// its confidence. UserError when there are no verdicts.
Consensus simulated_annotator_confidence(const std::vector<Preference>& original_order,
                                         const std::vector<Preference>& swapped_order);

}  // namespace flywheel
