// Pairwise battles between models (players): who met whom on which prompt, and who won. The
// ratings (bradley_terry.h, rating.h), the bootstrap and the online Elo all read a BattleLog.
//
// ---- the battle JSONL format (read_battles) ----
// One battle per line, as in Chatbot Arena's battle files:
//
//   {"model_a": "llama-3-8b", "model_b": "mistral-7b", "winner": "model_a",
//    "question_id": "q17", "conv_metadata": {...}}
//
//   model_a, model_b  required, non-empty strings, different from each other
//   winner            required: "model_a", "model_b", "tie" or "tie (bothbad)" (both ties count
//                     as half a win for each side)
//   question_id       optional, string or number: battles sharing it are one prompt, and the
//                     bootstrap resamples prompts whole (both games of a swapped pair, every
//                     model's answers to it); a battle without one is a prompt of its own. The
//                     same id in two files is the same prompt; the number 17 and the string
//                     "17" are different ids (JSON keeps them apart, and so does this).
//   style features    optional, in one of two forms (see below).
// Other keys (tstamp, anony, game, judge, language, ...) are ignored.
//
// Style features, per side, for style control (style_control.h):
//   Flywheel's flat form: "style": {"len_a", "len_b", "header_a", "header_b", "list_a",
//     "list_b", "bold_a", "bold_b"}, all eight, each a number >= 0; other keys are an error.
//   Chatbot Arena's form: "conv_metadata": {"sum_assistant_a_tokens", "sum_assistant_b_tokens",
//     "header_count_a", "header_count_b", "list_count_a", "list_count_b", "bold_count_a",
//     "bold_count_b"}, each a number >= 0 or an object of numbers that is summed ({"h1": 2,
//     "h2": 1, ...}, {"ordered": 3, "unordered": 0}, {"**": 4, "__": 0}). conv_metadata without
//     all eight keys (older Arena files) leaves the battle without style; only style control
//     needs them. When both forms are present, "style" is used.
// The length's unit is whatever the producer counted (Chatbot Arena: tiktoken tokens;
// measure_style: Unicode code points); only the ratio (a - b) / (a + b + 1) enters the fit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "trainer/core/error.h"

namespace flywheel {

enum class Winner : uint8_t { kA, kB, kTie };

// One answer's style counts.
struct StyleCounts {
  double length = 0;   // answer length (tokens, or code points; see above)
  double headers = 0;  // markdown headers, h1..h6
  double lists = 0;    // ordered and unordered list items
  double bold = 0;     // **bold** and __bold__ spans
};

struct BattleStyle {
  StyleCounts a;
  StyleCounts b;
};

struct Battle {
  int32_t a = 0;  // players, indices into BattleLog::players()
  int32_t b = 0;
  Winner winner = Winner::kTie;
  int32_t weight = 1;  // times the battle counts (Arena-Hard's strong verdicts: 3)
  int32_t prompt = 0;  // index of its prompt (question_id), the bootstrap's resampling unit
  int32_t style = -1;  // index into BattleLog::styles(), -1 without style features
};

// Battles in the order they were read, with players and prompts interned.
class BattleLog {
 public:
  // The player's index, added on first use.
  int32_t player(const std::string& name);
  std::optional<int32_t> find_player(const std::string& name) const;
  // The prompt's index for a question_id, added on first use.
  int32_t prompt(const std::string& question_id);
  // A prompt of its own, for a battle without a question_id.
  int32_t new_prompt() { return prompts_++; }

  // `where` ("PATH:LINE") is kept for the first battle without style, for style control's error.
  void add(Battle battle, const std::optional<BattleStyle>& style, const std::string& where);

  const std::vector<std::string>& players() const { return players_; }
  const std::vector<Battle>& battles() const { return battles_; }
  const std::vector<BattleStyle>& styles() const { return styles_; }
  int32_t prompts() const { return prompts_; }
  // "PATH:LINE (why)" of the first battle without style features; empty when all have them.
  const std::string& first_without_style() const { return first_without_style_; }

 private:
  std::vector<std::string> players_;
  std::unordered_map<std::string, int32_t> player_index_;
  std::unordered_map<std::string, int32_t> prompt_index_;
  int32_t prompts_ = 0;
  std::vector<Battle> battles_;
  std::vector<BattleStyle> styles_;
  std::string first_without_style_;
};

// Appends every battle of a battle JSONL file (plain or gzip) to *log. A malformed line is a
// UserError "PATH:LINE: ..." naming the key and what was expected.
void read_battles(const std::string& path, BattleLog* log);

}  // namespace flywheel
