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

// The directory of the running test's temporary files.
inline std::filesystem::path temp_dir_of(const ::testing::TestInfo& info) {
  return std::filesystem::temp_directory_path() /
         ("flywheel-eval-" + std::string(info.test_suite_name()) + "-" + info.name());
}

// Removes each test's temporary directory when the test ends (only its own: CTest runs other
// tests in other processes at the same time).
class TempDirCleaner : public ::testing::EmptyTestEventListener {
 public:
  void OnTestEnd(const ::testing::TestInfo& info) override {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir_of(info), ignored);
  }
};

// Registered once per test binary, the first time write_temp is called.
inline void clean_temp_dirs_after_tests() {
  static const bool registered = [] {
    ::testing::UnitTest::GetInstance()->listeners().Append(new TempDirCleaner);
    return true;
  }();
  (void)registered;
}

// A file under a fresh per-test directory, holding `text`; the directory goes when the test
// ends.
inline std::string write_temp(const std::string& name, const std::string& text) {
  clean_temp_dirs_after_tests();
  const auto dir = temp_dir_of(*::testing::UnitTest::GetInstance()->current_test_info());
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
