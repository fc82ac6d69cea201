// Bootstrap intervals for the ratings: each round draws as many resampling units as there are,
// uniformly with replacement (multinomial counts per unit), and refits (rating.h's Rater).
//
// The unit is a prompt by default: every battle sharing a question_id (both games of a
// swapped pair, every model's answers to it) moves together, which respects that battles on
// one prompt are not independent. ResampleUnit::kBattle draws single battles, as Chatbot
// Arena's bootstrap does (an Arena-Hard strong verdict, weight 3, stays one unit, where
// Arena-Hard's show_result.py draws its three copies separately).
//
// Rounds are seeded from (seed, round) alone, so the result does not depend on the number of
// threads, and the same seed gives the same intervals on every platform (mt19937_64 and an
// integer range reduction of our own, not the library's distributions).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "trainer/eval/battles.h"
#include "trainer/eval/rating.h"

namespace flywheel {

enum class ResampleUnit { kPrompt, kBattle };

struct BootstrapOptions {
  int rounds = 100;
  ResampleUnit unit = ResampleUnit::kPrompt;
  uint64_t seed = 0;
  int threads = 0;  // 0: one per hardware thread
};

// The resampling unit of each battle and, in *units, how many there are.
std::vector<int32_t> resampling_units(const BattleLog& log, ResampleUnit unit, int32_t* units);

// How many times each of `units` units is drawn in round `round`: `units` uniform draws.
std::vector<int32_t> draw_unit_counts(int32_t units, uint64_t seed, int round);

struct BootstrapResult {
  std::vector<std::vector<double>> ratings;               // [R][P], NaN: not in round r
  std::vector<std::array<double, kStyleFeatures>> style;  // [R] θ of each round
  int capped_rounds = 0;          // rounds whose plain MLE diverged (RatingFit::capped)
  int anchor_missing_rounds = 0;  // rounds without the anchor (all NaN)
  int unconverged_rounds = 0;
};

BootstrapResult bootstrap_ratings(const Rater& rater, const BootstrapOptions& options);

// numpy.percentile(values, 100 q) with its default "linear" interpolation: sorted x, h =
// (n - 1) q, x[⌊h⌋] + (h - ⌊h⌋)(x[⌊h⌋ + 1] - x[⌊h⌋]). NaNs are left out (as pandas'
// quantile does); NaN when nothing is left.
double percentile(std::vector<double> values, double q);

}  // namespace flywheel
