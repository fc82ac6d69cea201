#include "rollout/generation_eval.h"

#include <algorithm>

#include "rollout/generate.h"
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
    items.push_back({render_chat(chat_template, prompt, tokenizer, {add_bos, true}).ids,
                     messages.back()["content"].get<std::string>()});
  }
  return items;
}

std::map<std::string, double> evaluate_generation(LlamaForCausalLM& model,
                                                  const Tokenizer& tokenizer,
                                                  const std::vector<GenerationEvalItem>& items,
                                                  const ScoreFn& score,
                                                  const GenerationEvalOptions& options) {
  const bool was_training = model->is_training();
  model->eval();
  GenerateOptions gen;
  gen.sampler.temperature = 0;  // greedy
  gen.max_new_tokens = options.max_new_tokens;
  gen.stop_ids = {tokenizer.eos_id()};
  gen.pad_id = tokenizer.pad_id();
  double total = 0;
  int64_t scored = 0;
  for (size_t begin = 0; begin < items.size(); begin += static_cast<size_t>(options.batch_size)) {
    const auto end = std::min(items.size(), begin + static_cast<size_t>(options.batch_size));
    std::vector<std::vector<int64_t>> prompts;
    for (size_t i = begin; i < end; ++i)
      prompts.push_back(items[i].prompt);
    const auto outputs = generate(model, prompts, gen);
    for (size_t i = begin; i < end; ++i) {
      if (auto s = score(tokenizer.decode(outputs[i - begin]), items[i].reference)) {
        total += *s;
        ++scored;
      }
    }
  }
  if (was_training) model->train();
  return {{"accuracy", scored > 0 ? total / static_cast<double>(scored) : 0.0},
          {"scored", static_cast<double>(scored)}};
}

}  // namespace flywheel
