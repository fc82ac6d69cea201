#include "trainer/arena/answers.h"

#include <filesystem>

namespace flywheel {

std::vector<ArenaAnswer> answer_prompts(ChatModel& model, const std::string& player,
                                        const std::vector<ArenaPrompt>& prompts,
                                        const ReplyOptions& options) {
  std::vector<nlohmann::ordered_json> conversations;
  std::vector<std::string> where;
  for (const auto& p : prompts) {
    conversations.push_back(p.text_prompt && options.plain_text_prompts
                                ? nlohmann::ordered_json(question_text(p.messages))
                                : p.messages);
    where.push_back(p.where);
  }
  const std::vector<Completion> replies = model.reply(conversations, where, options);
  std::vector<ArenaAnswer> answers;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ArenaAnswer a;
    a.question_id = prompts[i].question_id;
    a.player = player;
    a.messages = prompts[i].messages;
    a.text_prompt = prompts[i].text_prompt;
    a.answer = replies[i].text;
    a.tokens = static_cast<int64_t>(replies[i].token_ids.size());
    a.finish_reason = replies[i].finish_reason;
    a.ground_truth = prompts[i].ground_truth;
    answers.push_back(std::move(a));
  }
  return answers;
}

bool answers_cached(const std::string& path, const std::vector<ArenaPrompt>& prompts) {
  if (!std::filesystem::exists(path)) return false;
  const auto cached = read_answers(path);
  for (const auto& p : prompts) {
    if (!cached.contains(p.question_id)) return false;
  }
  return true;
}

void write_answers(const std::string& path, const std::vector<ArenaAnswer>& answers) {
  std::string text;
  for (const auto& a : answers)
    text += answer_json(a).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomic(path, text);
}

}  // namespace flywheel
