// Bradley–Terry ratings (rating.h over bradley_terry.h) and online Elo: hand-derived MLEs,
// ties as half, weights, the anchor, the gauge, recovery of known ratings, and what happens
// when the MLE does not exist.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "tests/eval/ratings_util.h"
#include "trainer/eval/online_elo.h"

namespace flywheel {
namespace {

using testing::add_battles;
using testing::fit_log;

double rating_of(const BattleLog& log, const RatingFit& fit, const std::string& name) {
  return fit.rating[*log.find_player(name)];
}

// A beats B 3:1, A beats C 3:1, B and C split 1:1 with 2 ties. B and C are interchangeable,
// so R_B = R_C, and A's score equation (expected wins = actual wins over its 8 battles) reads
// 8 σ = 6 with σ = P(A beats B): σ = 3/4, so R_A - R_B = 400 log10(3) = 190.848. B's equations
// hold too: against A, 4 (1 - 3/4) = 1 win; against C, 4 · 1/2 = 2 = 1 win + 2 half ties.
// The mean is 1000 (Σβ = 0): R_A = 1000 + 2/3 · 400 log10 3, R_B = R_C = 1000 - 1/3 · 400 log10 3.
TEST(BradleyTerry, HandDerivedTriangle) {
  BattleLog log;
  add_battles(&log, "A", "B", Winner::kA, 3);
  add_battles(&log, "B", "A", Winner::kA, 1);  // B wins once, as the first side
  add_battles(&log, "C", "A", Winner::kB, 3);  // A wins 3 as the second side
  add_battles(&log, "A", "C", Winner::kB, 1);
  add_battles(&log, "B", "C", Winner::kA, 1);
  add_battles(&log, "B", "C", Winner::kB, 1);
  add_battles(&log, "C", "B", Winner::kTie, 2);
  const RatingFit fit = fit_log(log);
  const double gap = 400 * std::log10(3.0);
  EXPECT_FALSE(fit.capped);
  EXPECT_NEAR(rating_of(log, fit, "A"), 1000 + 2 * gap / 3, 1e-6);
  EXPECT_NEAR(rating_of(log, fit, "B"), 1000 - gap / 3, 1e-6);
  EXPECT_NEAR(rating_of(log, fit, "C"), 1000 - gap / 3, 1e-6);
}

// A tree of comparisons fits each edge exactly: A-B scores 2 wins + 1 tie of 4 for A (2.5/4,
// odds 5/3); B-C 8 wins + 1 tie of 10 for B (8.5/10, odds 17/3). So R_A - R_B = 400 log10(5/3)
// = 88.74, R_B - R_C = 400 log10(17/3) = 301.34, and with mean 1000, R_B = 1000 - (d1 - d2)/3.
TEST(BradleyTerry, HandDerivedChainWithTies) {
  BattleLog log;
  add_battles(&log, "A", "B", Winner::kA, 2);
  add_battles(&log, "A", "B", Winner::kTie, 1);
  add_battles(&log, "A", "B", Winner::kB, 1);
  add_battles(&log, "B", "C", Winner::kA, 8);
  add_battles(&log, "C", "B", Winner::kTie, 1);
  add_battles(&log, "C", "B", Winner::kA, 1);
  const RatingFit fit = fit_log(log);
  const double d1 = 400 * std::log10(5.0 / 3), d2 = 400 * std::log10(17.0 / 3);
  const double rb = 1000 - (d1 - d2) / 3;
  EXPECT_NEAR(rating_of(log, fit, "A"), rb + d1, 1e-6);
  EXPECT_NEAR(rating_of(log, fit, "B"), rb, 1e-6);
  EXPECT_NEAR(rating_of(log, fit, "C"), rb - d2, 1e-6);
}

// Two ties are one win and one loss: 3 wins, 1 loss, 2 ties score like 4 wins, 2 losses, and
// both give the closed form 400 log10(4/2) between the two.
TEST(BradleyTerry, TiesCountHalf) {
  BattleLog with_ties, without;
  add_battles(&with_ties, "A", "B", Winner::kA, 3);
  add_battles(&with_ties, "A", "B", Winner::kB, 1);
  add_battles(&with_ties, "A", "B", Winner::kTie, 2);
  add_battles(&without, "A", "B", Winner::kA, 4);
  add_battles(&without, "A", "B", Winner::kB, 2);
  const RatingFit x = fit_log(with_ties), y = fit_log(without);
  EXPECT_NEAR(x.rating[0] - x.rating[1], 400 * std::log10(2.0), 1e-7);
  EXPECT_NEAR(x.rating[0], y.rating[0], 1e-9);
  EXPECT_NEAR(x.rating[1], y.rating[1], 1e-9);
}

TEST(BradleyTerry, WeightCountsAsRepetitions) {
  BattleLog weighted, repeated;
  Battle b = testing::make_battle(&weighted, "A", "B", Winner::kA);
  b.weight = 3;
  weighted.add(b, std::nullopt, "test");
  add_battles(&weighted, "A", "B", Winner::kB, 1);
  add_battles(&repeated, "A", "B", Winner::kA, 3);
  add_battles(&repeated, "A", "B", Winner::kB, 1);
  EXPECT_NEAR(fit_log(weighted).rating[0], fit_log(repeated).rating[0], 1e-9);
  EXPECT_NEAR(fit_log(weighted).rating[0] - fit_log(weighted).rating[1], 400 * std::log10(3.0),
              1e-7);
}

// The anchor shifts every rating by one constant and puts the anchor exactly where asked.
TEST(BradleyTerry, AnchorShiftsEveryRating) {
  const BattleLog log = testing::simulate({1100, 1000, 900, 950}, 4000, 0.1, 7);
  const RatingFit free = fit_log(log);
  RatingOptions options;
  options.anchor = "p1";
  options.anchor_rating = 1500;
  const RatingFit anchored = fit_log(log, options);
  EXPECT_DOUBLE_EQ(anchored.rating[1], 1500);
  const double shift = 1500 - free.rating[1];
  for (size_t i = 0; i < free.rating.size(); ++i)
    EXPECT_NEAR(anchored.rating[i], free.rating[i] + shift, 1e-9);
  options.anchor = "nobody";
  EXPECT_THROW(fit_log(log, options), UserError);
}

// Without an anchor the gauge is scikit-learn's from zero: the mean rating is exactly 1000.
// Truth: 8 players 50 apart (mean 1000 after centering), 20% ties. Each plays about
// 2 · 40000 / 8 = 10000 battles; a rating's standard error is about
// 400 / (ln 10 · sqrt(10000 · 0.22)) = 3.7 points (Fisher information α² p (1 - p) per battle,
// p (1 - p) ≈ 0.22 over these gaps), so 15 points is 4 standard errors.
TEST(BradleyTerry, RecoversKnownRatings) {
  std::vector<double> truth = {1175, 1125, 1075, 1025, 975, 925, 875, 825};
  const double mean = std::accumulate(truth.begin(), truth.end(), 0.0) / truth.size();
  const BattleLog log = testing::simulate(truth, 40000, 0.2, 11);
  const RatingFit fit = fit_log(log);
  double sum = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    EXPECT_NEAR(fit.rating[i], truth[i] - mean + 1000, 15) << "p" << i;
    sum += fit.rating[i];
  }
  EXPECT_NEAR(sum / truth.size(), 1000, 1e-9);
}

// A never lost: the MLE sends it to +infinity. The fit adds 0.01 battles of ties between every
// two players, says so, and stays finite with A far above. Two players only: A won all 5, so
// with the virtual ties A's score is 5.005 of 5.01 and the gap is 400 log10(5.005 / 0.005) =
// 1200.2, the cap that RatingOptions documents (scale · log10(2n / virtual_tie)).
TEST(BradleyTerry, NeverLostIsCappedAndNamed) {
  BattleLog log;
  add_battles(&log, "A", "B", Winner::kA, 5);
  const RatingFit fit = fit_log(log);
  EXPECT_TRUE(fit.capped);
  EXPECT_TRUE(fit.converged);
  ASSERT_EQ(fit.graph.never_lost.size(), 1u);
  EXPECT_EQ(fit.graph.never_lost[0], std::vector<int32_t>{0});
  ASSERT_EQ(fit.graph.never_won.size(), 1u);
  EXPECT_EQ(fit.graph.never_won[0], std::vector<int32_t>{1});
  EXPECT_NEAR(fit.rating[0] - fit.rating[1], 400 * std::log10(5.005 / 0.005), 1e-6);
}

// C beat or tied nobody, while A and B beat each other: the groups are {A, B}, which never lost
// to an outsider, and {C}, which never won; the fit stays finite with C far below.
TEST(BradleyTerry, NeverWonGroup) {
  BattleLog log;
  add_battles(&log, "A", "B", Winner::kA, 3);
  add_battles(&log, "A", "B", Winner::kB, 2);
  add_battles(&log, "A", "C", Winner::kA, 2);
  add_battles(&log, "C", "B", Winner::kB, 2);
  const RatingFit fit = fit_log(log);
  EXPECT_TRUE(fit.capped);
  ASSERT_EQ(fit.graph.never_lost.size(), 1u);
  EXPECT_EQ(fit.graph.never_lost[0], (std::vector<int32_t>{0, 1}));
  ASSERT_EQ(fit.graph.never_won.size(), 1u);
  EXPECT_EQ(fit.graph.never_won[0], std::vector<int32_t>{2});
  for (double r : fit.rating)
    EXPECT_TRUE(std::isfinite(r));
  EXPECT_LT(fit.rating[2], fit.rating[1] - 400);
}

TEST(BradleyTerry, DisconnectedGroupsAreReported) {
  BattleLog log;
  add_battles(&log, "A", "B", Winner::kA, 2);
  add_battles(&log, "A", "B", Winner::kB, 1);
  add_battles(&log, "C", "D", Winner::kA, 1);
  add_battles(&log, "C", "D", Winner::kB, 1);
  const RatingFit fit = fit_log(log);
  ASSERT_EQ(fit.graph.components.size(), 2u);
  EXPECT_EQ(fit.graph.components[0], (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(fit.graph.components[1], (std::vector<int32_t>{2, 3}));
}

// compute_elo by hand: A beats B at 1000 vs 1000, E = 1/2, so A gains 4 · 1/2 = 2 (1002, 998).
// Then a tie: E_A = 1 / (1 + 10^(-4/400)), and A moves by 4 (1/2 - E_A) < 0. A weight-2 battle
// is two updates in a row.
TEST(OnlineElo, HandComputed) {
  BattleLog log;
  add_battles(&log, "A", "B", Winner::kA, 1);
  add_battles(&log, "A", "B", Winner::kTie, 1);
  const std::vector<double> r = online_elo(log, {});
  const double ea = 1 / (1 + std::pow(10.0, -4.0 / 400));
  EXPECT_DOUBLE_EQ(r[0], 1002 + 4 * (0.5 - ea));
  EXPECT_DOUBLE_EQ(r[1], 998 - 4 * (0.5 - ea));

  BattleLog twice;
  Battle b = testing::make_battle(&twice, "A", "B", Winner::kB);
  b.weight = 2;
  twice.add(b, std::nullopt, "test");
  const double e2 = 1 / (1 + std::pow(10.0, 4.0 / 400));  // A at 998 against B at 1002
  EXPECT_DOUBLE_EQ(online_elo(twice, {})[0], 998 - 4 * e2);
}

}  // namespace
}  // namespace flywheel
