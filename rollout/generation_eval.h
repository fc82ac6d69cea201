// Evaluation by generation: greedy answers to held-out prompts, scored by a verifier. This is
// the held-out metric the trainers report before and after training (exact match on the
// quickstart's arithmetic, GSM8K accuracy later).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trainer/model/llama.h"
#include "trainer/text/tokenizer.h"

namespace flywheel {

struct GenerationEvalItem {
  std::vector<int64_t> prompt;  // rendered prompt ids, ending with the assistant header
  std::string reference;        // ground truth handed to the verifier
};

struct GenerationEvalOptions {
  int64_t max_new_tokens = 32;
  int64_t batch_size = 32;
};

using ScoreFn =
    std::function<std::optional<double>(const std::string& response, const std::string& truth)>;

// Reads up to max_samples records of an SFT-format file ({"messages": [...]} whose last message
// is the assistant's reference answer) into prompts with the chat template's generation
// prompt. UserError with file:line on malformed records.
std::vector<GenerationEvalItem> load_generation_eval(const std::string& path,
                                                     const Tokenizer& tokenizer,
                                                     const std::string& chat_template, bool add_bos,
                                                     int64_t max_samples);

// {"accuracy": mean score over the items the verifier applies to, "scored": their count}.
std::map<std::string, double> evaluate_generation(LlamaForCausalLM& model,
                                                  const Tokenizer& tokenizer,
                                                  const std::vector<GenerationEvalItem>& items,
                                                  const ScoreFn& score,
                                                  const GenerationEvalOptions& options);

}  // namespace flywheel
