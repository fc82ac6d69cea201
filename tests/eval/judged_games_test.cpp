// Judged games as battles: both orders of an LLM judge become two battles that read_battles
// takes (positions kept), unparseable games are counted and never written, and the judge's
// position and length bias are measured on hand-counted cases.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "trainer/eval/battles.h"
#include "trainer/eval/judged_games.h"

namespace flywheel {
namespace {

ArenaAnswer answer(const std::string& player, const std::string& qid, const std::string& text) {
  ArenaAnswer a;
  a.player = player;
  a.question_id = qid;
  a.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "q " + qid}}});
  a.text_prompt = true;
  a.answer = text;
  a.tokens = static_cast<int64_t>(text.size());
  a.finish_reason = "stop";
  return a;
}

JudgedGame game(const ArenaAnswer& a, const ArenaAnswer& b, int number, const std::string& out) {
  JudgedGame g;
  g.a = &a;
  g.b = &b;
  g.game = number;
  g.verdict = parse_verdict(out, VerdictFormat::kArenaHard);
  g.details = {{"output", out}};
  return g;
}

TEST(JudgedGames, BothOrdersBecomeBattles) {
  const ArenaAnswer base1 = answer("base", "q1", "short");
  const ArenaAnswer pol1 = answer("policy", "q1", "# Title\n- one\n- two\n**bold**");
  const ArenaAnswer base2 = answer("base", "q2", "x");
  const ArenaAnswer pol2 = answer("policy", "q2", "y");
  // q1: the judge prefers the policy in both orders (consistent).
  // q2: it prefers whoever is shown first (position bias), then fails to answer once more.
  const std::vector<std::pair<JudgedGame, JudgedGame>> meetings = {
      {game(base1, pol1, 1, "[[B>>A]]"), game(pol1, base1, 2, "[[A>B]]")},
      {game(base2, pol2, 1, "[[A>B]]"), game(pol2, base2, 2, "[[A>B]]")},
      {game(base2, pol2, 1, "I cannot decide"), game(pol2, base2, 2, "[[A=B]]")},
  };
  JudgeStats stats;
  const std::string path =
      (std::filesystem::temp_directory_path() / "flywheel-judged-games.jsonl").string();
  {
    std::ofstream out(path);
    for (const auto& [first, swapped] : meetings) {
      stats.add_game(first);
      stats.add_game(swapped);
      stats.add_meeting(first, swapped);
      for (const JudgedGame* g : {&first, &swapped}) {
        if (g->verdict.verdict) out << battle_json(*g, "llm:judge").dump() << "\n";
      }
    }
  }
  // 6 games, 5 parsed: the first position won 3 (q1's B>>A is a second-position win), 1 tie.
  EXPECT_EQ(stats.games, 6);
  EXPECT_EQ(stats.parsed, 5);
  EXPECT_EQ(stats.no_verdict, 1);
  EXPECT_EQ(stats.first_wins, 3);
  EXPECT_EQ(stats.second_wins, 1);
  EXPECT_EQ(stats.ties, 1);
  EXPECT_DOUBLE_EQ(*stats.first_position_win_rate(), (3 + 0.5) / 5);
  // Meetings with both games parsed: q1 (policy both times: consistent) and q2's first (base,
  // then policy: inconsistent).
  EXPECT_EQ(stats.meetings, 3);
  EXPECT_EQ(stats.both_parsed, 2);
  EXPECT_EQ(stats.consistent, 1);
  EXPECT_DOUBLE_EQ(*stats.consistency_rate(), 0.5);
  const auto j = stats.to_json();
  EXPECT_EQ(j["unparseable"], 1);
  EXPECT_EQ(j["unparseable_by_reason"]["no_verdict"], 1);

  BattleLog log;
  read_battles(path, &log);
  ASSERT_EQ(log.battles().size(), 5u);
  EXPECT_EQ(log.players(), (std::vector<std::string>{"base", "policy"}));
  // Game 1 of q1: base shown first, the policy (B) wins; game 2: the policy shown first wins.
  EXPECT_EQ(log.battles()[0].a, 0);
  EXPECT_EQ(log.battles()[0].winner, Winner::kB);
  EXPECT_EQ(log.battles()[1].a, 1);
  EXPECT_EQ(log.battles()[1].winner, Winner::kA);
  EXPECT_EQ(log.battles()[4].winner, Winner::kTie);
  EXPECT_EQ(log.prompts(), 2);
  EXPECT_TRUE(log.first_without_style().empty());
  // Style measured on the answers: the policy's q1 answer has a header, two list items, bold.
  const BattleStyle& s = log.styles()[static_cast<size_t>(log.battles()[0].style)];
  EXPECT_EQ(s.a.length, 5);
  EXPECT_EQ(s.b.headers, 1);
  EXPECT_EQ(s.b.lists, 2);
  EXPECT_EQ(s.b.bold, 1);
  std::remove(path.c_str());
}

// The longer answer's win rate, overall and by the length difference relative to the longer
// answer, counted by hand: ties count half, equal lengths are left out.
TEST(JudgedGames, LengthBiasByRelativeDifference) {
  const ArenaAnswer b1 = answer("base", "1", "aaaa"), p1 = answer("policy", "1", "aaaaaaaa");
  const ArenaAnswer b2 = answer("base", "2", "aaaaaaaaaa"), p2 = answer("policy", "2", "aaaaaaaaa");
  const ArenaAnswer b3 = answer("base", "3", "abc"), p3 = answer("policy", "3", "xyz");
  const ArenaAnswer b4 = answer("base", "4", "a"), p4 = answer("policy", "4", "aaaaaaaaaa");
  JudgeStats stats;
  stats.add_game(game(b1, p1, 1, "[[B>A]]"));          // 4 vs 8: 50% shorter; the longer wins
  stats.add_game(game(p1, b1, 2, "[[A=B]]"));          // the same pair swapped: a tie
  stats.add_game(game(b2, p2, 1, "[[A>B]]"));          // 10 vs 9: 10%; the longer wins
  stats.add_game(game(b3, p3, 1, "[[A>B]]"));          // equal lengths: left out
  stats.add_game(game(b4, p4, 1, "[[A>B]]"));          // 1 vs 10: 90%; the shorter wins
  stats.add_game(game(b4, p4, 1, "no verdict here"));  // unparsed: left out
  EXPECT_EQ(stats.equal_length, 1);
  EXPECT_EQ(stats.by_length_games, (std::array<int64_t, 4>{1, 0, 2, 1}));
  EXPECT_DOUBLE_EQ(*stats.longer_win_rate(), (1 + 0.5 + 1 + 0) / 4);
  EXPECT_DOUBLE_EQ(*stats.longer_win_rate(0), 1.0);
  EXPECT_FALSE(stats.longer_win_rate(1).has_value());
  EXPECT_DOUBLE_EQ(*stats.longer_win_rate(2), 0.75);
  EXPECT_DOUBLE_EQ(*stats.longer_win_rate(3), 0.0);
  const auto j = stats.to_json()["length_bias"];
  EXPECT_DOUBLE_EQ(j["longer_win_rate"].get<double>(), 0.625);
  EXPECT_EQ(j["equal_length"], 1);
  EXPECT_EQ(j["by_relative_difference"][2]["games"], 2);
  EXPECT_DOUBLE_EQ(j["by_relative_difference"][2]["relative_difference_from"].get<double>(), 0.5);
  EXPECT_TRUE(j["by_relative_difference"][1]["longer_win_rate"].is_null());
}

TEST(JudgedGames, SingleGameJudgesAndJudgmentLines) {
  const ArenaAnswer base = answer("base", "7", "12");
  const ArenaAnswer pol = answer("policy", "7", "13");
  JudgedGame g;
  g.a = &base;
  g.b = &pol;
  g.verdict.verdict = JudgeVerdict{Outcome::kTieBothBad, false, "bothbad"};
  g.verdict.problem = VerdictProblem::kNone;
  const auto b = battle_json(g, "verifier:gsm8k");
  EXPECT_EQ(b["winner"], "tie (bothbad)");
  EXPECT_EQ(b["question_id"], "7");
  EXPECT_EQ(b["game"], 1);
  JudgeStats stats;
  stats.add_game(g);
  // No swapped meetings: no position-bias figures.
  EXPECT_FALSE(stats.to_json().contains("first_position_win_rate"));
  EXPECT_FALSE(stats.to_json().contains("consistency_rate"));

  g.verdict = parse_verdict("[[A>B]] [[B>A]]", VerdictFormat::kArenaHard);
  const auto line = judgment_json(g, "llm:x");
  EXPECT_TRUE(line["winner"].is_null());
  EXPECT_EQ(line["problem"], "ambiguous");
  EXPECT_EQ(line["found"], "A>B B>A");
}

}  // namespace
}  // namespace flywheel
