#include "trainer/eval/answers.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"

namespace flywheel {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

[[noreturn]] void fail(const std::string& where, const std::string& message) {
  throw UserError(where + ": " + message);
}

// "question_id" as a string (numbers as written); the line number when absent.
std::string question_id_of(const json& v, int64_t line, const std::string& where) {
  const auto it = v.find("question_id");
  if (it == v.end() || it->is_null()) return std::to_string(line);
  if (it->is_string() && !it->get_ref<const std::string&>().empty()) return it->get<std::string>();
  if (it->is_number_integer()) return it->dump();
  fail(where, "\"question_id\": expected a non-empty string or an integer, got " + it->dump());
}

// "messages": a non-empty list of {"role", "content"} strings ending with a user turn.
ordered_json messages_of(const json& v, const char* key, const std::string& where,
                         bool must_end_with_user) {
  const json& m = v.at(key);
  if (!m.is_array() || m.empty())
    fail(where, std::string("\"") + key + "\": expected a non-empty list of messages");
  ordered_json out = ordered_json::array();
  for (size_t i = 0; i < m.size(); ++i) {
    const json& msg = m[i];
    const std::string at = std::string("\"") + key + "[" + std::to_string(i) + "]\"";
    if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string() ||
        !msg.contains("content") || !msg["content"].is_string())
      fail(where, at + ": expected {\"role\": string, \"content\": string}, got " + msg.dump());
    out.push_back({{"role", msg["role"]}, {"content", msg["content"]}});
  }
  if (must_end_with_user && out.back()["role"] != "user")
    fail(where, std::string("\"") + key + "\": the last message must be the user's (the turn " +
                    "the players answer), got role \"" + out.back()["role"].get<std::string>() +
                    "\"");
  return out;
}

// The prompt of a prompts line or an answers line: "prompt" (text) or "messages".
void read_prompt(const json& v, const std::string& where, ordered_json* messages,
                 bool* text_prompt) {
  const bool text = v.contains("prompt"), chat = v.contains("messages");
  if (text == chat) fail(where, "expected exactly one of \"prompt\" (text) and \"messages\"");
  if (text) {
    if (!v["prompt"].is_string()) fail(where, "\"prompt\": expected a string");
    *messages = ordered_json::array({{{"role", "user"}, {"content", v["prompt"]}}});
  } else {
    *messages = messages_of(v, "messages", where, /*must_end_with_user=*/true);
  }
  *text_prompt = text;
}

const std::string& string_field(const json& v, const char* key, const std::string& where) {
  const auto it = v.find(key);
  if (it == v.end() || !it->is_string())
    fail(where, std::string("\"") + key + "\": expected a string");
  return it->get_ref<const std::string&>();
}

}  // namespace

std::vector<ArenaPrompt> read_arena_prompts(const std::string& path) {
  std::vector<ArenaPrompt> prompts;
  std::set<std::string> seen;
  JsonlReader reader(path);
  for (JsonlRecord rec; reader.next(&rec);) {
    ArenaPrompt p;
    p.where = path + ":" + std::to_string(rec.line);
    if (!rec.value.is_object()) fail(p.where, "expected a JSON object (one prompt)");
    p.question_id = question_id_of(rec.value, rec.line, p.where);
    if (!seen.insert(p.question_id).second)
      fail(p.where, "\"question_id\": \"" + p.question_id + "\" appears twice");
    read_prompt(rec.value, p.where, &p.messages, &p.text_prompt);
    if (auto gt = rec.value.find("ground_truth"); gt != rec.value.end()) p.ground_truth = *gt;
    prompts.push_back(std::move(p));
  }
  if (prompts.empty()) throw UserError(path + ": no prompts");
  return prompts;
}

std::string question_text(const ordered_json& messages) {
  if (messages.size() == 1) return messages[0]["content"].get<std::string>();
  std::string out;
  for (const auto& m : messages) {
    if (!out.empty()) out += "\n\n";
    out += "[" + m["role"].get<std::string>() + "]\n" + m["content"].get<std::string>();
  }
  return out;
}

ordered_json answer_json(const ArenaAnswer& a) {
  ordered_json out = {{"question_id", a.question_id}, {"player", a.player}};
  if (a.text_prompt) {
    out["prompt"] = a.messages[0]["content"];
  } else {
    out["messages"] = a.messages;
  }
  out["answer"] = a.answer;
  out["tokens"] = a.tokens;
  out["finish_reason"] = a.finish_reason;
  if (!a.ground_truth.is_null()) out["ground_truth"] = a.ground_truth;
  return out;
}

std::string answers_path(const std::string& dir, const std::string& player) {
  if (player.empty() || player == "." || player == ".." ||
      player.find_first_of("/\\") != std::string::npos || player.find('\0') != std::string::npos)
    throw UserError("player name '" + player +
                    "': expected a plain file name (no '/', not '.' or '..')");
  return (std::filesystem::path(dir) / "answers" / (player + ".jsonl")).string();
}

std::vector<std::string> cached_players(const std::string& dir) {
  const std::filesystem::path answers = std::filesystem::path(dir) / "answers";
  if (!std::filesystem::is_directory(answers))
    throw UserError(dir + ": no answers/ folder (run `flywheel arena answer --out " + dir +
                    "` first)");
  std::vector<std::string> players;
  for (const auto& entry : std::filesystem::directory_iterator(answers)) {
    if (entry.is_regular_file() && entry.path().extension() == ".jsonl")
      players.push_back(entry.path().stem().string());
  }
  std::sort(players.begin(), players.end());
  return players;
}

std::map<std::string, ArenaAnswer> read_answers(const std::string& path) {
  std::map<std::string, ArenaAnswer> answers;
  JsonlReader reader(path);
  for (JsonlRecord rec; reader.next(&rec);) {
    const std::string where = path + ":" + std::to_string(rec.line);
    const json& v = rec.value;
    if (!v.is_object()) fail(where, "expected a JSON object (one answer)");
    ArenaAnswer a;
    a.question_id = question_id_of(v, rec.line, where);
    a.player = string_field(v, "player", where);
    read_prompt(v, where, &a.messages, &a.text_prompt);
    a.answer = string_field(v, "answer", where);
    a.finish_reason = string_field(v, "finish_reason", where);
    const auto tokens = v.find("tokens");
    if (tokens == v.end() || !tokens->is_number_integer() || tokens->get<int64_t>() < 0)
      fail(where, "\"tokens\": expected a count >= 0");
    a.tokens = tokens->get<int64_t>();
    if (auto gt = v.find("ground_truth"); gt != v.end()) a.ground_truth = *gt;
    const std::string id = a.question_id;
    if (!answers.emplace(id, std::move(a)).second)
      fail(where, "\"question_id\": \"" + id + "\" appears twice");
  }
  return answers;
}

}  // namespace flywheel
