#include "trainer/rl/prompts.h"

#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/text/chat_template.h"
#include "verifiers/verifier.h"

namespace flywheel {
namespace {

RlPrompt parse_row(const nlohmann::json& row, const Tokenizer& tokenizer,
                   const DataOptions& options, const std::string& verifier_override,
                   bool verifier_optional) {
  if (!row.is_object()) throw UserError("expected a JSON object");
  RlPrompt p;
  if (row.contains("messages")) {
    const auto& m = row["messages"];
    if (!m.is_array() || m.empty()) throw UserError("key 'messages': expected a list of messages");
    std::vector<ChatMessage> messages;
    for (size_t i = 0; i < m.size(); ++i) {
      const std::string key = "messages[" + std::to_string(i) + "]";
      if (!m[i].is_object() || !m[i].contains("role") || !m[i]["role"].is_string() ||
          !m[i].contains("content") || !m[i]["content"].is_string())
        throw UserError("key '" + key + "': expected {\"role\": string, \"content\": string}");
      messages.push_back({m[i]["role"], m[i]["content"]});
    }
    if (messages.back().role != "user") {
      throw UserError("key 'messages': expected a conversation ending with the user's turn, got " +
                      messages.back().role);
    }
    p.text = messages.back().content;
    p.chat = true;
    p.ids = render_chat(options.chat_template, messages, tokenizer,
                        {options.add_bos, /*add_generation_prompt=*/true, kNoTraining})
                .ids;
  } else if (row.contains("prompt") && row["prompt"].is_string()) {
    p.text = row["prompt"].get<std::string>();
    if (options.add_bos) p.ids.push_back(tokenizer.bos_id());
    const auto text = tokenizer.encode(p.text);
    p.ids.insert(p.ids.end(), text.begin(), text.end());
  } else {
    throw UserError("expected 'messages' (a conversation) or 'prompt' (a string)");
  }
  if (p.ids.empty()) throw UserError("the prompt has no tokens");
  if (row.contains("ground_truth")) {
    const auto& g = row["ground_truth"];
    if (g.is_string()) {
      p.ground_truth = g.get<std::string>();
    } else if (g.is_number()) {
      p.ground_truth = g.dump();
    } else if (!g.is_null()) {
      throw UserError("key 'ground_truth': expected a string or a number");
    }
  }
  if (!verifier_override.empty()) {
    p.verifier = verifier_override;
  } else if (row.contains("dataset") && row["dataset"].is_string()) {
    p.verifier = row["dataset"].get<std::string>();
  } else if (!verifier_optional) {
    throw UserError("key 'dataset': expected the verifier's name (or set rl.verifier)");
  }
  if (!p.verifier.empty()) find_verifier(p.verifier);  // an unknown name fails here, with the row
  p.fields = row;
  return p;
}

}  // namespace

std::vector<RlPrompt> load_rl_prompts(const std::string& path, const Tokenizer& tokenizer,
                                      const DataOptions& options,
                                      const std::string& verifier_override, DataStats* stats,
                                      bool verifier_optional) {
  DataStats local;
  DataStats& s = stats != nullptr ? *stats : local;
  std::vector<RlPrompt> prompts;
  JsonlReader reader(path);
  std::string text;
  int64_t line = 0;
  while (reader.next_line(&text, &line)) {
    ++s.records;
    try {
      RlPrompt p = parse_row(parse_jsonl_line(path, line, text), tokenizer, options,
                             verifier_override, verifier_optional);
      if (static_cast<int64_t>(p.ids.size()) > options.max_length) {
        ++s.dropped_overlong;
        continue;
      }
      prompts.push_back(std::move(p));
      ++s.examples;
    } catch (const UserError& e) {
      const std::string where = path + ":" + std::to_string(line) + ": ";
      const std::string message =
          std::string(e.what()).rfind(path, 0) == 0 ? e.what() : where + e.what();
      if (!options.skip_invalid) throw UserError(message);
      if (s.skipped_invalid++ == 0) s.first_invalid = message;
    }
  }
  if (prompts.empty()) throw UserError(path + ": no prompts (" + s.summary() + ")");
  return prompts;
}

}  // namespace flywheel
