// Arena-Hard-Auto v0.1 judgments (arena_hard.h): verdicts to battles, strong verdicts ×3,
// null verdicts counted, and the score (win rate against the baseline) on a file computed by
// hand.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/eval/ratings_util.h"
#include "trainer/eval/arena_hard.h"
#include "trainer/eval/leaderboard.h"
#include "trainer/eval/online_elo.h"

namespace flywheel {
namespace {

using testing::write_temp;

// Game 1 shows the baseline as A, game 2 shows the model as A.
//   m1 q1: B>>A (m1 wins, ×3), A>B (m1 is A: wins)          m1 scores 3 + 1 of 4
//   m1 q2: A=B (tie), B>A (the baseline is B: it wins)      0.5 of 2
//   m1 q3: null (skipped), A>>B (m1 is A: wins ×3)          3 of 3
//   m2 q1: A>B (baseline), B>A (baseline)                   0 of 2
//   m2 q2: A<B (= B>A: m2 wins), B<A (= A>B: m2 is A, wins) 2 of 2
// So m1 scores 7.5 of 9 and m2 2 of 4. The comparisons form a star around the baseline, so the
// MLE fits each edge exactly: P(m1 beats base) = 7.5/9, a win rate of 83.33% and a gap of
// 400 log10(7.5/1.5) = 400 log10 5; m2 wins 50%.
constexpr const char* kJudgments =
    R"({"question_id": "q1", "model": "m1", "judge": "j", "games": [{"score": "B>>A"}, {"score": "A>B"}]}
{"question_id": "q2", "model": "m1", "judge": "j", "games": [{"score": "A=B"}, {"score": "B>A"}]}
{"question_id": "q3", "model": "m1", "judge": "j", "games": [{"score": null, "judgment": "?"}, {"score": "A>>B"}]}
{"question_id": "q1", "model": "m2", "judge": "j", "games": [{"score": "A>B"}, {"score": "B>A"}]}
{"question_id": "q2", "model": "m2", "judge": "j", "games": [{"score": "A<B"}, {"score": "B<A"}]}
)";

TEST(ArenaHard, VerdictsBecomeWeightedBattles) {
  BattleLog log;
  ArenaHardCounts counts;
  read_arena_hard(write_temp("j.jsonl", kJudgments), {"gpt-4-0314", 3}, &log, &counts);
  EXPECT_EQ(counts.judgments, 5);
  EXPECT_EQ(counts.games, 9);
  EXPECT_EQ(counts.null_games, 1);
  ASSERT_EQ(log.battles().size(), 9u);
  const Battle& first = log.battles()[0];
  EXPECT_EQ(log.players()[first.a], "gpt-4-0314");
  EXPECT_EQ(log.players()[first.b], "m1");
  EXPECT_EQ(first.winner, Winner::kB);
  EXPECT_EQ(first.weight, 3);
  EXPECT_EQ(log.battles()[1].winner, Winner::kB);  // game 2, A>B: the model was A
  EXPECT_EQ(log.battles()[1].weight, 1);
  EXPECT_EQ(log.battles()[3].winner, Winner::kA);  // game 2, B>A: the baseline was B
  // q1 of m1 and q1 of m2 are one prompt: the bootstrap moves them together.
  EXPECT_EQ(log.battles()[0].prompt, log.battles()[5].prompt);
  EXPECT_EQ(log.prompts(), 3);
}

TEST(ArenaHard, ScoreIsThePredictedWinRate) {
  BattleLog log;
  ArenaHardCounts counts;
  read_arena_hard(write_temp("j.jsonl", kJudgments), {"gpt-4-0314", 3}, &log, &counts);
  RatingOptions options;
  options.anchor = "gpt-4-0314";
  const RatingFit fit = testing::fit_log(log, options);
  const BootstrapResult boot;  // no rounds
  const std::vector<double> online = online_elo(log, {});
  LeaderboardInputs in;
  in.log = &log;
  in.fit = &fit;
  in.boot = &boot;
  in.online = &online;
  in.options = &options;
  in.baseline = "gpt-4-0314";
  const Leaderboard board = build_leaderboard(in);
  ASSERT_EQ(board.rows.size(), 3u);
  EXPECT_EQ(board.rows[0].name, "m1");
  EXPECT_NEAR(board.rows[0].win_rate, 100 * 7.5 / 9, 1e-7);
  EXPECT_NEAR(board.rows[0].rating, 1000 + 400 * std::log10(5.0), 1e-6);
  EXPECT_NEAR(board.rows[1].win_rate, 50, 1e-7);  // m2 and the baseline tie at 1000
  EXPECT_NEAR(board.rows[2].win_rate, 50, 1e-7);
}

void expect_error(const std::string& line, const std::string& expected) {
  const std::string path = write_temp("bad.jsonl", line + "\n");
  BattleLog log;
  ArenaHardCounts counts;
  try {
    read_arena_hard(path, {"base", 3}, &log, &counts);
    ADD_FAILURE() << "no error for " << line;
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path + ":1: "), std::string::npos) << what;
    EXPECT_NE(what.find(expected), std::string::npos) << what;
  }
}

TEST(ArenaHard, ErrorsNameFileLineAndGame) {
  expect_error(
      R"({"question_id": "q", "model": "m", "games": [{"score": "A>B"}, {"score": "A>>>B"}]})",
      "games[1]: \"score\": expected A>>B, A>B, A=B, B>A, B>>A or null, got \"A>>>B\"");
  expect_error(R"({"question_id": "q", "games": []})", "missing key \"model\"");
  expect_error(R"({"question_id": "q", "model": "base", "games": [{"score": "A>B"}]})",
               "is the baseline");
  expect_error(R"({"model": "m", "games": [{"score": "A>B"}]})", "missing key \"question_id\"");
  expect_error(R"({"question_id": "q", "model": "m", "games": {"score": "A>B"}})",
               "\"games\": expected a list of one or two games");
  expect_error(R"({"question_id": "q", "model": "m", "games": ["A>B"]})",
               "games[0]: expected an object with a \"score\"");
}

}  // namespace
}  // namespace flywheel
