// Preference pairs from the arena: the questions a policy lost become DPO pairs, the winner's
// answer chosen and the policy's rejected, in the conversational form `flywheel train` reads
// for DPO (trainer/data/examples.h):
//
//   {"prompt": [{"role": "user", "content": ...}], "chosen": [{"role": "assistant", ...}],
//    "rejected": [{"role": "assistant", ...}], "question_id": "q1", "chosen_model": "gpt",
//    "rejected_model": "policy", "margin": 2, "games": 2}
//
// Per question and opponent, the opponent's margin is its wins minus its losses against the
// policy over their battles (ties count for neither; an LLM judge's two orders are two
// battles). A question yields at most one pair: from the opponent with the largest positive
// margin (the first met among equals), so a loss that the swapped game contradicts, or that
// only a position-biased judge saw, yields nothing. Pairs whose two answers are the same text
// are dropped (nothing to learn).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "trainer/eval/answers.h"
#include "trainer/eval/verdicts.h"

namespace flywheel {

// The fields of a battle line (trainer/eval/battles.h) that mining needs.
struct BattleRecord {
  std::string model_a, model_b;
  std::string question_id;  // a number as written
  Outcome outcome = Outcome::kTie;
  std::string where;  // "FILE:LINE"
};

// Every battle of a file (plain or gzip); UserError "FILE:LINE: ..." naming the key when a
// line lacks model_a, model_b, winner or question_id.
std::vector<BattleRecord> read_battle_records(const std::string& path);

struct MinedPair {
  std::string question_id;
  const ArenaAnswer* chosen = nullptr;    // the opponent's answer
  const ArenaAnswer* rejected = nullptr;  // the policy's answer
  int64_t margin = 0;                     // opponent's wins - losses on this question
  int64_t games = 0;                      // battles between the two on this question
};

struct MiningStats {
  int64_t battles = 0;         // battles read
  int64_t policy_battles = 0;  // battles the policy played
  int64_t questions = 0;       // questions the policy played
  int64_t lost_questions = 0;  // questions with an opponent of positive margin
  int64_t identical = 0;       // of those, dropped because both answers are the same text
  int64_t pairs = 0;           // pairs mined
};

// The answer of `player` to `question_id`; throws UserError when there is none.
using AnswerLookup =
    std::function<const ArenaAnswer&(const std::string& player, const std::string& question_id)>;

// The pairs, in the order the questions first appear in `battles`.
std::vector<MinedPair> mine_pairs(const std::vector<BattleRecord>& battles,
                                  const std::string& policy, const AnswerLookup& answer,
                                  MiningStats* stats);

nlohmann::ordered_json pair_json(const MinedPair& pair);

}  // namespace flywheel
