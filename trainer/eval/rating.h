// Ratings of a battle log: the Bradley–Terry fit (bradley_terry.h), with or without style
// control (style_control.h), on the whole log or on a bootstrap resample of it. A resample is
// given as how many times each resampling unit (a prompt, or a single battle) is taken, so
// the log is prepared once and each refit only re-weights it.
//
// When the plain MLE does not exist (some players never lost or never won against the rest,
// or a resample leaves the comparisons in pieces), every two present players get
// `virtual_tie` battles' worth of ties added: the ratings stay finite, the gaps that would
// diverge come out large (a player who won all of n games against one opponent ends up about
// scale · log10(2n / virtual_tie + 1) points above it), and RatingFit::capped says it happened.
// Style control's L2 penalty keeps its fit finite without that. A whole log whose players fall
// into groups that never met has no common scale at all; RatingFit::graph shows it, and the
// leaderboard refuses it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/eval/battles.h"
#include "trainer/eval/bradley_terry.h"
#include "trainer/eval/style_control.h"

namespace flywheel {

struct RatingOptions {
  EloScale elo;
  // Shift every fit (each bootstrap round too, as Chatbot Arena does) so that this player has
  // this rating; without it the mean rating is elo.init.
  std::optional<std::string> anchor;
  double anchor_rating = 1000;
  bool style_control = false;
  double style_l2 = 0.5;      // Chatbot Arena's reg (see style_control.h); must be > 0
  double virtual_tie = 0.01;  // battles of ties per pair when the plain MLE diverges; > 0

  void validate() const;  // UserError naming the option
};

struct RatingFit {
  std::vector<double> rating;  // [P] Elo scale; NaN for a player with no battle in the sample,
                               // and for everyone when the anchor has none
  std::array<double, kStyleFeatures> style{};  // θ; NaN when not fitted or the feature is flat
  bool capped = false;                         // virtual ties were added (the plain MLE diverged)
  bool anchor_missing = false;
  bool converged = true;  // Newton reached its tolerance
  ComparisonGraph graph;  // of the sample, before virtual ties
};

class Rater {
 public:
  // unit_of_battle[b] in [0, units): which resampling unit battle b belongs to.
  Rater(const BattleLog& log, const RatingOptions& options, std::vector<int32_t> unit_of_battle,
        int32_t units);

  int32_t units() const { return units_; }
  int players() const { return players_; }
  const RatingOptions& options() const { return options_; }

  // The fit with unit u taken unit_counts[u] times; all ones is the log itself.
  RatingFit fit(const std::vector<int32_t>& unit_counts) const;

 private:
  RatingFit finish(const BtSolution& solution, ComparisonGraph graph, bool capped) const;

  RatingOptions options_;
  int players_ = 0;
  int32_t units_ = 0;
  std::optional<int32_t> anchor_;
  std::vector<std::pair<int32_t, int32_t>> pairs_;  // distinct (i < j) pairs of the log
  // Plain BT: each unit's battles summed per pair (compressed rows: unit u's entries are
  // [unit_begin_[u], unit_begin_[u + 1])).
  std::vector<int64_t> unit_begin_;
  std::vector<int32_t> entry_pair_;
  std::vector<double> entry_games_, entry_score_;
  // Style control: one row per battle.
  std::vector<int32_t> unit_of_battle_, row_a_, row_b_, row_pair_;
  std::vector<double> row_outcome_, row_weight_;
  StyleMatrix style_;
};

}  // namespace flywheel
