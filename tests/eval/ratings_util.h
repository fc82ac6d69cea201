// Helpers for the ratings tests: temporary JSONL files and battles simulated from known
// Bradley–Terry ratings.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "trainer/eval/battles.h"
#include "trainer/eval/bootstrap.h"
#include "trainer/eval/rating.h"

namespace flywheel::testing {

// A file under a fresh per-test directory, holding `text`.
inline std::string write_temp(const std::string& name, const std::string& text) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("flywheel-eval-" + std::string(info->test_suite_name()) + "-" + info->name());
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

inline Battle make_battle(BattleLog* log, const std::string& a, const std::string& b, Winner w) {
  Battle battle;
  battle.a = log->player(a);
  battle.b = log->player(b);
  battle.winner = w;
  battle.prompt = log->new_prompt();
  return battle;
}

// Adds `count` battles of a over b with the given winner, each its own prompt.
inline void add_battles(BattleLog* log, const std::string& a, const std::string& b, Winner w,
                        int count) {
  for (int k = 0; k < count; ++k)
    log->add(make_battle(log, a, b, w), std::nullopt, "test");
}

// P(first side wins) on the Elo scale.
inline double elo_win_probability(double ra, double rb) {
  return 1 / (1 + std::pow(10.0, (rb - ra) / 400));
}

// `battles` battles between uniformly drawn distinct players "p0".."pN" with the given true
// ratings. A fraction `ties` of each pair's battles are ties and the rest are won with the
// probability that makes the expected score (ties as half) exactly the model's P(a beats b),
// so the tie-as-half Bradley–Terry MLE is consistent for these ratings. That needs
// ties <= 2 min(p, 1 - p) for every pair (checked).
inline BattleLog simulate(const std::vector<double>& truth, int battles, double ties,
                          uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(truth.size()) - 1);
  BattleLog log;
  for (size_t i = 0; i < truth.size(); ++i)
    log.player("p" + std::to_string(i));
  for (int n = 0; n < battles; ++n) {
    const int a = pick(rng);
    int b = pick(rng);
    while (b == a)
      b = pick(rng);
    const double p = elo_win_probability(truth[a], truth[b]);
    EXPECT_LE(ties, 2 * std::min(p, 1 - p)) << "the ratings are too far apart for these ties";
    Battle battle;
    battle.a = a;
    battle.b = b;
    battle.prompt = log.new_prompt();
    if (u(rng) < ties) {
      battle.winner = Winner::kTie;
    } else {
      battle.winner = u(rng) < (p - ties / 2) / (1 - ties) ? Winner::kA : Winner::kB;
    }
    log.add(battle, std::nullopt, "simulated");
  }
  return log;
}

// The fit on the whole log, resampling by prompt.
inline RatingFit fit_log(const BattleLog& log, const RatingOptions& options = {}) {
  int32_t units = 0;
  auto unit_of = resampling_units(log, ResampleUnit::kPrompt, &units);
  const Rater rater(log, options, std::move(unit_of), units);
  return rater.fit(std::vector<int32_t>(units, 1));
}

}  // namespace flywheel::testing
