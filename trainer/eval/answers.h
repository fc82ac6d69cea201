// The arena's prompts and its players' cached answers (`flywheel arena answer` writes them,
// `arena judge` and `arena mine` read them).
//
// ---- prompts (--prompts FILE.jsonl) ----
//   {"question_id": "q1", "prompt": "What is 2+2?", "ground_truth": "4"}
//   {"question_id": 7, "messages": [{"role": "user", "content": "..."}, ...]}
// question_id (string or number) defaults to the line number; ground_truth (any JSON, for
// `--judge verifier:NAME`) is optional. A prompt is one user turn; messages are a conversation
// that ends with a user turn.
//
// ---- answers (DIR/answers/<player>.jsonl), one line per prompt, in the prompts' order ----
//   {"question_id": "q1", "player": "A", "prompt": "What is 2+2?", "answer": "4.",
//    "tokens": 3, "finish_reason": "stop", "ground_truth": "4"}
// with "messages" instead of "prompt" for conversations. tokens counts the generated tokens (a
// stop token included); finish_reason is "stop" or "length".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace flywheel {

struct ArenaPrompt {
  std::string question_id;
  nlohmann::ordered_json messages;  // [{"role", "content"}], ends with a user turn
  bool text_prompt = false;         // given as "prompt" (one user turn)
  nlohmann::json ground_truth;      // null when absent
  std::string where;                // "FILE:LINE", for errors
};

// UserError "FILE:LINE: ..." naming the key for a malformed line or a repeated question_id.
std::vector<ArenaPrompt> read_arena_prompts(const std::string& path);

struct ArenaAnswer {
  std::string question_id;
  std::string player;
  nlohmann::ordered_json messages;  // the prompt, as in ArenaPrompt
  bool text_prompt = false;
  std::string answer;
  int64_t tokens = 0;
  std::string finish_reason;
  nlohmann::json ground_truth;
};

// The prompt as one text for a judge: a single user turn as it is, a conversation as
// "[role]\ncontent" blocks separated by blank lines.
std::string question_text(const nlohmann::ordered_json& messages);

nlohmann::ordered_json answer_json(const ArenaAnswer& answer);

// DIR/answers/<player>.jsonl. UserError for a player name that is not a plain file name.
std::string answers_path(const std::string& dir, const std::string& player);

// The players that have a cache in DIR/answers, sorted.
std::vector<std::string> cached_players(const std::string& dir);

// A player's answers by question_id. UserError "FILE:LINE: ..." for a malformed line.
std::map<std::string, ArenaAnswer> read_answers(const std::string& path);

}  // namespace flywheel
