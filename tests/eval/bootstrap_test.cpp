// The bootstrap (bootstrap.h): numpy's percentile, the multinomial draws, determinism, prompts
// moving whole, per-round anchoring, and coverage of known ratings over repeated draws.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "tests/eval/ratings_util.h"
#include "trainer/eval/bootstrap.h"

namespace flywheel {
namespace {

// numpy.percentile([1, 2, 3, 4], 2.5) = 1 + 0.075 (h = 3 · 0.025), and 97.5 gives
// 3 + 0.925 (h = 2.925); NaNs are dropped first; nothing left is NaN.
TEST(Percentile, NumpyLinear) {
  EXPECT_DOUBLE_EQ(percentile({4, 2, 1, 3}, 0.025), 1.075);
  EXPECT_DOUBLE_EQ(percentile({4, 2, 1, 3}, 0.975), 3.925);
  EXPECT_DOUBLE_EQ(percentile({3, NAN, 1, 2}, 0.5), 2);
  EXPECT_DOUBLE_EQ(percentile({5}, 0.975), 5);
  EXPECT_TRUE(std::isnan(percentile({NAN}, 0.5)));
}

TEST(Bootstrap, DrawsAreMultinomialAndSeeded) {
  const auto a = draw_unit_counts(1000, 42, 3);
  EXPECT_EQ(std::accumulate(a.begin(), a.end(), 0), 1000);
  EXPECT_EQ(a, draw_unit_counts(1000, 42, 3));
  EXPECT_NE(a, draw_unit_counts(1000, 42, 4));
  EXPECT_NE(a, draw_unit_counts(1000, 43, 3));
  // Each count is Binomial(1000, 1/1000): about 1 - 1/e = 63.2% of the units are drawn.
  const auto drawn = std::count_if(a.begin(), a.end(), [](int32_t c) { return c > 0; });
  EXPECT_NEAR(drawn / 1000.0, 1 - std::exp(-1.0), 0.05);
}

BootstrapResult run(const BattleLog& log, ResampleUnit unit, int threads,
                    const RatingOptions& options = {}) {
  int32_t units = 0;
  auto unit_of = resampling_units(log, unit, &units);
  const Rater rater(log, options, std::move(unit_of), units);
  BootstrapOptions boot;
  boot.rounds = 40;
  boot.unit = unit;
  boot.seed = 5;
  boot.threads = threads;
  return bootstrap_ratings(rater, boot);
}

TEST(Bootstrap, SameSeedSameRoundsWhateverTheThreads) {
  const BattleLog log = testing::simulate({1100, 1000, 900}, 600, 0.1, 3);
  const BootstrapResult one = run(log, ResampleUnit::kPrompt, 1);
  const BootstrapResult two = run(log, ResampleUnit::kPrompt, 2);
  ASSERT_EQ(one.ratings.size(), 40u);
  EXPECT_EQ(one.ratings, two.ratings);
}

// Every prompt holds two battles, A beats B and B beats A (a swapped pair). Drawn whole, every
// resample has as many A wins as B wins, so every round rates them equal: a zero-width
// interval. Drawn battle by battle the counts differ and the interval opens up.
TEST(Bootstrap, PromptsMoveWhole) {
  BattleLog log;
  for (int k = 0; k < 50; ++k) {
    const int32_t q = log.prompt("q" + std::to_string(k));
    Battle x = testing::make_battle(&log, "A", "B", Winner::kA);
    Battle y = testing::make_battle(&log, "B", "A", Winner::kA);
    x.prompt = y.prompt = q;
    log.add(x, std::nullopt, "test");
    log.add(y, std::nullopt, "test");
  }
  const BootstrapResult prompt = run(log, ResampleUnit::kPrompt, 1);
  for (const auto& r : prompt.ratings)
    EXPECT_NEAR(r[0] - r[1], 0, 1e-9);
  const BootstrapResult battle = run(log, ResampleUnit::kBattle, 1);
  double widest = 0;
  for (const auto& r : battle.ratings)
    widest = std::max(widest, std::abs(r[0] - r[1]));
  EXPECT_GT(widest, 20);
}

// Anchored in every round, as Chatbot Arena does: the anchor never moves.
TEST(Bootstrap, AnchorIsFixedInEveryRound) {
  const BattleLog log = testing::simulate({1100, 1000, 900}, 600, 0.1, 4);
  RatingOptions options;
  options.anchor = "p2";
  options.anchor_rating = 800;
  for (const auto& r : run(log, ResampleUnit::kPrompt, 2, options).ratings)
    EXPECT_DOUBLE_EQ(r[2], 800);
}

// Percentile intervals cover the truth at about the stated 95%: 100 independent logs of 1000
// battles among 4 players with known ratings (mean 1000, the fit's gauge), 100 rounds each,
// 400 intervals. Independent intervals would cover 380 ± 4.4 (binomial SD, 1.1%); the four of
// one log are correlated (their ratings sum to a constant), roughly doubling that, so the test
// accepts 0.90 to 0.99, about ±2.5 SD.
TEST(Bootstrap, IntervalsCoverTheTruth) {
  const std::vector<double> truth = {1120, 1040, 960, 880};  // mean 1000
  int covered = 0, total = 0;
  for (int rep = 0; rep < 100; ++rep) {
    const BattleLog log = testing::simulate(truth, 1000, 0.1, 1000 + rep);
    int32_t units = 0;
    auto unit_of = resampling_units(log, ResampleUnit::kPrompt, &units);
    const Rater rater(log, {}, std::move(unit_of), units);
    BootstrapOptions boot;
    boot.rounds = 100;
    boot.seed = rep;
    const BootstrapResult result = bootstrap_ratings(rater, boot);
    for (size_t i = 0; i < truth.size(); ++i) {
      std::vector<double> samples;
      for (const auto& r : result.ratings)
        samples.push_back(r[i]);
      covered += percentile(samples, 0.025) <= truth[i] && truth[i] <= percentile(samples, 0.975);
      ++total;
    }
  }
  const double rate = static_cast<double>(covered) / total;
  EXPECT_GE(rate, 0.90);
  EXPECT_LE(rate, 0.99);
  std::printf("coverage of 95%% intervals: %d / %d = %.3f\n", covered, total, rate);
}

}  // namespace
}  // namespace flywheel
