// The leaderboard (leaderboard.h): the rank rule, intervals from the bootstrap, the win-rate
// column, warnings, the Markdown and JSON forms, and the errors for incomparable groups.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/eval/ratings_util.h"
#include "trainer/eval/leaderboard.h"
#include "trainer/eval/online_elo.h"

namespace flywheel {
namespace {

// Intervals [lower, upper]: A [10, 20], B [15, 25], C [21, 30], D [0, 5].
// A: only C's lower (21) is above A's upper (20): rank 2. B: nobody above 25: rank 1.
// C: rank 1. D: A (10), B (15) and C (21) all above 5: rank 4.
TEST(Leaderboard, RankIsOnePlusClearlyBetterPlayers) {
  EXPECT_EQ(interval_ranks({10, 15, 21, 0}, {20, 25, 30, 5}), (std::vector<int>{2, 1, 1, 4}));
  // Without intervals (bounds = ratings) it is the competition rank: ties share.
  EXPECT_EQ(interval_ranks({3, 5, 5, 1}, {3, 5, 5, 1}), (std::vector<int>{3, 1, 1, 4}));
  // Equal but for float rounding (a fit of two players tied in every game): one rank.
  EXPECT_EQ(interval_ranks({1000.0, 999.9999999999999}, {1000.0, 999.9999999999999}),
            (std::vector<int>{1, 1}));
}

struct Built {
  BattleLog log;
  RatingOptions options;
  RatingFit fit;
  BootstrapResult boot;
  std::vector<double> online;
  Leaderboard board;
};

void build(Built* b, int rounds, std::optional<std::string> baseline) {
  int32_t units = 0;
  auto unit_of = resampling_units(b->log, ResampleUnit::kPrompt, &units);
  const Rater rater(b->log, b->options, std::move(unit_of), units);
  b->fit = rater.fit(std::vector<int32_t>(units, 1));
  BootstrapOptions boot;
  boot.rounds = rounds;
  b->boot = bootstrap_ratings(rater, boot);
  b->online = online_elo(b->log, {});
  LeaderboardInputs in;
  in.log = &b->log;
  in.fit = &b->fit;
  in.boot = &b->boot;
  in.online = &b->online;
  in.options = &b->options;
  in.baseline = baseline;
  b->board = build_leaderboard(in);
}

TEST(Leaderboard, RowsIntervalsAndWinRates) {
  Built b;
  b.log = testing::simulate({1100, 1000, 900}, 3000, 0.1, 21);
  build(&b, 50, "p1");
  ASSERT_EQ(b.board.rows.size(), 3u);
  const LeaderboardRow& top = b.board.rows[0];
  EXPECT_EQ(top.name, "p0");
  EXPECT_LT(top.lower, top.rating);
  EXPECT_GT(top.upper, top.rating);
  EXPECT_EQ(top.rank, 1);
  EXPECT_EQ(top.battles + b.board.rows[1].battles + b.board.rows[2].battles, 2 * 3000);
  EXPECT_EQ(top.online_elo, b.online[0]);
  // Win rate from the fitted gap, and the baseline against itself at exactly 50.
  const double gap = top.rating - b.fit.rating[1];
  EXPECT_NEAR(top.win_rate, 100 / (1 + std::pow(10.0, -gap / 400)), 1e-9);
  EXPECT_LT(top.win_lower, top.win_rate);
  EXPECT_GT(top.win_upper, top.win_rate);
  const LeaderboardRow& base = b.board.rows[1];
  EXPECT_EQ(base.name, "p1");
  EXPECT_DOUBLE_EQ(base.win_rate, 50);
  EXPECT_DOUBLE_EQ(base.win_lower, 50);

  const std::string md = leaderboard_markdown(b.board);
  EXPECT_EQ(
      md.rfind("| Rank | Player | Rating | 95% CI | Battles | Online Elo | Win rate vs p1 (%) "
               "| 95% CI |\n",
               0),
      0u);
  EXPECT_NE(md.find("| 1 | p0 | "), std::string::npos) << md;

  const auto j = leaderboard_json(b.board);
  ASSERT_EQ(j["players"].size(), 3u);
  EXPECT_EQ(j["players"][0]["name"], "p0");
  EXPECT_EQ(j["players"][0]["rank"], 1);
  EXPECT_DOUBLE_EQ(j["players"][0]["lower"].get<double>(), top.lower);
  EXPECT_DOUBLE_EQ(j["players"][0]["win_rate"].get<double>(), top.win_rate);
  EXPECT_EQ(j["baseline"], "p1");
  EXPECT_FALSE(j.contains("style"));
}

TEST(Leaderboard, NoBootstrapMeansNoIntervals) {
  Built b;
  b.log = testing::simulate({1100, 1000}, 200, 0.1, 22);
  build(&b, 0, std::nullopt);
  EXPECT_TRUE(std::isnan(b.board.rows[0].lower));
  EXPECT_EQ(leaderboard_markdown(b.board).find("Win rate"), std::string::npos);
  const auto j = leaderboard_json(b.board);
  EXPECT_TRUE(j["players"][0]["lower"].is_null());
  EXPECT_FALSE(j["players"][0].contains("win_rate"));
}

TEST(Leaderboard, CappedFitWarnsNamingThePlayer) {
  Built b;
  testing::add_battles(&b.log, "champ", "x", Winner::kA, 4);
  testing::add_battles(&b.log, "x", "y", Winner::kA, 3);
  testing::add_battles(&b.log, "x", "y", Winner::kB, 2);
  build(&b, 20, std::nullopt);
  ASSERT_FALSE(b.board.warnings.empty());
  EXPECT_NE(b.board.warnings[0].find("champ won every battle it played"), std::string::npos)
      << b.board.warnings[0];
  EXPECT_EQ(b.board.rows[0].name, "champ");
  EXPECT_TRUE(std::isfinite(b.board.rows[0].upper));
  EXPECT_EQ(leaderboard_json(b.board)["warnings"].size(), b.board.warnings.size());
}

TEST(Leaderboard, IncomparableGroupsAndUnknownBaselineAreErrors) {
  Built b;
  testing::add_battles(&b.log, "a", "b", Winner::kA, 2);
  testing::add_battles(&b.log, "a", "b", Winner::kB, 1);
  testing::add_battles(&b.log, "c", "d", Winner::kTie, 2);
  try {
    build(&b, 0, std::nullopt);
    ADD_FAILURE();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("{a, b}, {c, d}"), std::string::npos) << e.what();
  }
  Built c;
  testing::add_battles(&c.log, "a", "b", Winner::kTie, 2);
  EXPECT_THROW(build(&c, 0, "gpt-4"), UserError);
}

TEST(Leaderboard, StyleCoefficientsAreReported) {
  Built b;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> len(1, 100);
  for (int n = 0; n < 400; ++n) {
    const BattleStyle s{{double(len(rng)), 1, double(n % 3), 0}, {double(len(rng)), 1, 0, 0}};
    const Winner w = s.a.length > s.b.length ? Winner::kA : n % 2 ? Winner::kB : Winner::kTie;
    b.log.add(testing::make_battle(&b.log, n % 2 ? "p" : "q", n % 2 ? "q" : "p", w), s, "t");
  }
  b.options.style_control = true;
  build(&b, 10, std::nullopt);
  ASSERT_EQ(b.board.style.size(), 4u);
  EXPECT_EQ(b.board.style[0].feature, "length");
  EXPECT_GT(b.board.style[0].coef, 0.5);           // longer answers won every time
  EXPECT_TRUE(std::isnan(b.board.style[1].coef));  // headers never vary
  const auto j = leaderboard_json(b.board);
  EXPECT_TRUE(j["style"]["headers"]["coef"].is_null());
  EXPECT_NE(leaderboard_markdown(b.board).find("| headers | - (never varies) |"),
            std::string::npos);
}

}  // namespace
}  // namespace flywheel
