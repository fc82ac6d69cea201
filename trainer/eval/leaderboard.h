// The leaderboard: ratings with bootstrap 95% intervals, ranks, battle counts, online Elo, and
// (given a baseline) each player's predicted win rate against it, as a Markdown table or JSON.
//
// Intervals are the 2.5th and 97.5th percentiles of the bootstrap ratings (numpy's linear
// interpolation, bootstrap.h). A player's rank is 1 + the number of players whose lower bound
// is above its upper bound (Chatbot Arena's rule), so players whose intervals overlap share
// ranks; without bootstrap rounds the bounds are the rating itself.
//
// The win rate against the baseline is Arena-Hard's score (show_result.py, get_win_rate_column):
// 100 / (1 + base^((R_baseline - R) / scale)) from the fitted ratings, its interval from the
// percentiles of R - R_baseline over the rounds (Arena-Hard anchors the baseline in every round
// and converts the rating percentiles, which is the same).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer/eval/battles.h"
#include "trainer/eval/bootstrap.h"
#include "trainer/eval/rating.h"

namespace flywheel {

struct LeaderboardRow {
  std::string name;
  double rating = 0;
  double lower = 0;  // 95% interval, NaN without bootstrap
  double upper = 0;
  int rank = 0;
  int64_t battles = 0;  // battles the player is in, each once whatever its weight
  double online_elo = 0;
  double win_rate = 0;  // percent against the baseline, NaN without one
  double win_lower = 0;
  double win_upper = 0;
};

struct StyleRow {
  std::string feature;
  double coef = 0;  // NaN when the feature never varies
  double lower = 0;
  double upper = 0;
};

struct Leaderboard {
  std::vector<LeaderboardRow> rows;  // best first
  std::vector<StyleRow> style;       // empty without style control
  std::optional<std::string> baseline;
  std::vector<std::string> warnings;  // capped fits, rounds without the anchor, ...
};

struct LeaderboardInputs {
  const BattleLog* log = nullptr;
  const RatingFit* fit = nullptr;               // on the whole log
  const BootstrapResult* boot = nullptr;        // may hold zero rounds
  const std::vector<double>* online = nullptr;  // [P] online Elo
  const RatingOptions* options = nullptr;       // the fit's
  std::optional<std::string> baseline;
};

// UserError when the whole log's comparisons fall apart into groups that never met (their
// ratings are not comparable), or the baseline has no battles.
Leaderboard build_leaderboard(const LeaderboardInputs& in);

// The whole of `arena rate` on a log: the Bradley–Terry fit, online Elo, `boot.rounds`
// bootstrap rounds and the leaderboard (errors as build_leaderboard's), with its timings.
struct RatedLog {
  Leaderboard board;
  int32_t units = 0;  // resampling units
  double fit_seconds = 0, bootstrap_seconds = 0;
};
RatedLog rate_log(const BattleLog& log, const RatingOptions& options, const BootstrapOptions& boot,
                  std::optional<std::string> baseline);

// Whether rating a is above b by more than float rounding (1e-9 of b's magnitude): two players
// tied in every game are fitted ~1e-13 apart and are equal. An infinite b compares exactly.
bool clearly_above(double a, double b);

// 1 + the number of j with clearly_above(lower[j], upper[i]): ratings that agree but for float
// rounding share a rank.
std::vector<int> interval_ranks(const std::vector<double>& lower, const std::vector<double>& upper);

std::string leaderboard_markdown(const Leaderboard& board);
// {"players": [{"name", "rating", "lower", "upper", "rank", "battles", "online_elo"
// [, "win_rate", "win_rate_lower", "win_rate_upper"]}], ["style": {"length": {"coef", "lower",
// "upper"}, ...},] "warnings": [...]}; NaN is written as null.
nlohmann::ordered_json leaderboard_json(const Leaderboard& board);

}  // namespace flywheel
