#include "rollout/generation_eval.h"

#include <algorithm>

#include "rollout/engine.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/text/chat_template.h"

namespace flywheel {

std::vector<GenerationEvalItem> load_generation_eval(const std::string& path,
                                                     const Tokenizer& tokenizer,
                                                     const std::string& chat_template, bool add_bos,
                                                     int64_t max_samples) {
  std::vector<GenerationEvalItem> items;
  JsonlReader reader(path);
  JsonlRecord record;
  while (static_cast<int64_t>(items.size()) < max_samples && reader.next(&record)) {
    const auto where = path + ":" + std::to_string(record.line);
    const auto& messages =
        record.value.contains("messages") ? record.value["messages"] : nlohmann::json();
    if (!messages.is_array() || messages.size() < 2) {
      throw UserError(where + ": expected {\"messages\": [...]} ending with the reference answer");
    }
    std::vector<ChatMessage> prompt;
    for (size_t i = 0; i < messages.size(); ++i) {
      const auto& m = messages[i];
      if (!m.is_object() || !m.contains("role") || !m.contains("content") ||
          !m["role"].is_string() || !m["content"].is_string()) {
        throw UserError(where + ": key 'messages[" + std::to_string(i) +
                        "]': expected {\"role\": string, \"content\": string}");
      }
      if (i + 1 < messages.size()) {
        prompt.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
      }
    }
    if (messages.back()["role"] != "assistant") {
      throw UserError(where + ": the last message must be the assistant's reference answer");
    }
    items.push_back(
        {render_chat(chat_template, prompt, tokenizer, {add_bos, true, kNoTraining}).ids,
         messages.back()["content"].get<std::string>()});
  }
  return items;
}

std::map<std::string, double> evaluate_generation(LlamaForCausalLM& model,
                                                  const Tokenizer& tokenizer,
                                                  const std::vector<GenerationEvalItem>& items,
                                                  const ScoreFn& score,
                                                  const GenerationEvalOptions& options) {
  if (items.empty()) return {{"accuracy", 0.0}, {"scored", 0.0}};
  // Back in training mode however this ends.
  struct EvalMode {
    LlamaForCausalLM& model;
    bool was_training;
    ~EvalMode() {}
  } mode{model, model->is_training()};
  model->eval();
  int64_t longest = 0;
  std::vector<Request> requests;
  for (const auto& item : items) {
    Request r;
    r.prompt = item.prompt;
    r.sampling.temperature = 0;  // greedy
    r.max_new_tokens = options.max_new_tokens;
    r.stop_ids = tokenizer.stop_ids();
    longest = std::max(longest, static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens);
    requests.push_back(std::move(r));
  }
  // KV memory for batch_size sequences of the longest prompt and answer, no more.
  const auto engine_options = sized_engine_options(
      model, std::min<int64_t>(options.batch_size, std::ssize(items)), longest);
  Engine engine(model, engine_options, &tokenizer);
  const auto outputs = engine.generate(requests);
  double total = 0;
  int64_t scored = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (auto s = score(outputs[i][0].text, items[i].reference)) {
      total += *s;
      ++scored;
    }
  }
  return {{"accuracy", scored > 0 ? total / static_cast<double>(scored) : 0.0},
          {"scored", static_cast<double>(scored)}};
}

}  // namespace flywheel
