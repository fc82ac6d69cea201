// Judged games as battles, and what they say about the judge.
//
// Every player meets the baseline on every question. A judge that reads both answers at once
// (an LLM) plays two games per meeting: game 1 shows the baseline as A, game 2 the player
// (position swap, as MT-Bench and Arena-Hard do), and each game becomes one battle with model_a
// the answer shown first, so the battle file keeps the positions. A judge that scores each
// answer alone (a reward model, a verifier) has no positions and plays game 1 only. A game
// without a verdict is counted, never written as a battle.
//
// Position bias (JudgeStats), over an LLM judge's parsed games:
//   first-position win rate  (games won by A + ½ ties) / parsed games; 0.5 for an unbiased judge
//   consistency rate         of the meetings whose two games both parsed, the share where both
//                            orders pick the same model (or both call a tie)
// Length bias, over every judge's parsed games whose answers differ in length (code points):
//   longer win rate          (games the longer answer won + ½ ties) / those games; overall and
//                            by the length difference relative to the longer answer, in
//                            quarters (under 25%, 25-50%, 50-75%, 75% and more). A judge that
//                            ignores length sits near the quality difference alone; reward
//                            models and LLM judges drift up with the difference.
#pragma once

#include <array>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "trainer/eval/answers.h"
#include "trainer/eval/verdicts.h"

namespace flywheel {

struct JudgedGame {
  const ArenaAnswer* a = nullptr;  // shown first (model_a)
  const ArenaAnswer* b = nullptr;  // shown second
  int game = 1;                    // 1: the baseline first; 2: swapped
  ParsedVerdict verdict;
  nlohmann::ordered_json details;  // the judge's evidence: scores, verification, its output
};

// One battle line in Chatbot Arena's format (trainer/eval/battles.h): model_a, model_b,
// winner, question_id, game, judge, verdict (the label), style (measure_battle_style of the two
// answers: lengths in code points, headers, lists, bold), the answers' token counts and the
// game's details. The game must have a verdict.
nlohmann::ordered_json battle_json(const JudgedGame& game, const std::string& judge);

// One line of --judgments: every game, parsed or not, with why it has no verdict.
nlohmann::ordered_json judgment_json(const JudgedGame& game, const std::string& judge);

struct JudgeStats {
  int64_t games = 0, parsed = 0;
  int64_t no_verdict = 0, ambiguous = 0, unknown_label = 0;  // unparseable, by reason
  int64_t first_wins = 0, second_wins = 0, ties = 0;         // parsed games, by position
  int64_t meetings = 0, both_parsed = 0, consistent = 0;     // swapped pairs (game 1 + game 2)
  // Length bias: parsed games by the relative length difference's quarter, and the longer
  // answer's wins in them (ties count half: twice the wins, plus the ties, halved later).
  static constexpr int kLengthBins = 4;
  int64_t equal_length = 0;
  std::array<int64_t, kLengthBins> by_length_games{}, by_length_longer_half_wins{};

  void add_game(const JudgedGame& game);
  // A meeting's two games (game 1: baseline first; game 2: swapped); counts consistency only.
  void add_meeting(const JudgedGame& first, const JudgedGame& swapped);

  int64_t unparseable() const { return games - parsed; }
  std::optional<double> first_position_win_rate() const;
  std::optional<double> consistency_rate() const;
  // Over all bins (bin < 0), or one.
  std::optional<double> longer_win_rate(int bin = -1) const;
  nlohmann::ordered_json to_json() const;
};

}  // namespace flywheel
