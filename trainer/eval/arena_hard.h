// Arena-Hard-Auto v0.1 judgments as battles against the baseline, as its show_result.py
// (get_battles_from_row) turns them into battles. One JSONL line per (model, question):
//
//   {"question_id": "...", "model": "my-model", "judge": "gpt-4-1106-preview",
//    "games": [{"score": "A>B", ...}, {"score": "B>>A", ...}]}
//
// Game 1 shows the baseline as A and the model as B; game 2 swaps them. Each game is one battle
// model_a = baseline, model_b = model, read from the verdict:
//
//   game 1: A>>B baseline wins ×3   A>B baseline wins   A=B tie   B>A model wins   B>>A model ×3
//   game 2: A>>B model wins ×3      A>B model wins      A=B tie   B>A baseline     B>>A baseline ×3
//
// (×3 is ArenaHardOptions::strong_weight: the battle counts that many times). Arena-Hard v2's
// mirrored spellings A<B, A<<B, B<A, B<<A and B=A are read as B>A, B>>A, A>B, A>>B and A=B. A
// game that is null, has no "score" or a null score (the judge gave no verdict) is skipped and
// counted; any other score is an error. The battles' prompt is the question_id, so the
// bootstrap resamples a question with every model's judgments on it.
#pragma once

#include <cstdint>
#include <string>

#include "trainer/eval/battles.h"

namespace flywheel {

struct ArenaHardOptions {
  std::string baseline;  // the model every judgment is against (required)
  int strong_weight = 3;
};

struct ArenaHardCounts {
  int64_t judgments = 0;   // lines read
  int64_t games = 0;       // games with a verdict (battles added)
  int64_t null_games = 0;  // games skipped for want of a verdict
};

// Appends the battles of one judgment file (plain or gzip) to *log and adds to *counts.
void read_arena_hard(const std::string& path, const ArenaHardOptions& options, BattleLog* log,
                     ArenaHardCounts* counts);

}  // namespace flywheel
