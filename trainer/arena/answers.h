// Players' answers to the arena's prompts (`flywheel arena answer`): generated with the rollout
// engine through each model's chat template, cached as DIR/answers/<player>.jsonl (the format
// is in trainer/eval/answers.h).
#pragma once

#include <string>
#include <vector>

#include "trainer/arena/chat_model.h"
#include "trainer/eval/answers.h"

namespace flywheel {

// `player`'s answer to every prompt, in the prompts' order.
std::vector<ArenaAnswer> answer_prompts(ChatModel& model, const std::string& player,
                                        const std::vector<ArenaPrompt>& prompts,
                                        const ReplyOptions& options);

// Whether the cache at `path` exists and holds an answer to every prompt (then the player is
// not run again). A cache that does not parse is an error, not a miss: it names the line.
bool answers_cached(const std::string& path, const std::vector<ArenaPrompt>& prompts);

// Writes the answers, one line each, atomically (temporary file + rename): a run stopped
// half-way leaves no partial cache that a rerun would take for finished.
void write_answers(const std::string& path, const std::vector<ArenaAnswer>& answers);

}  // namespace flywheel
