// A model's sampled answers to RLVR prompts, each judged by its prompt's verifier: the sampled
// reward of a model on held-out prompts, and on-policy preference pairs for DPO (answers the
// model itself gets right and wrong, as Tulu 3 built its on-policy preference data).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/model/llama.h"
#include "trainer/rl/prompts.h"
#include "trainer/text/tokenizer.h"
#include "verifiers/verifier.h"

namespace flywheel {

// responses[i] judged by prompts[i]'s verifier; a prompt without one (a reward model scores it)
// gets an empty verdict. Scored on a thread pool.
std::vector<Verdict> judge(const std::vector<const RlPrompt*>& prompts,
                           const std::vector<std::string>& responses, double success_reward);

struct SampleOptions {
  int64_t n = 8;  // samples per prompt
  double temperature = 1.0;
  int64_t max_new_tokens = 32;
  uint64_t seed = 1;  // sample j of prompt k draws from request_seed(seed, k, j)
  double success_reward = 1.0;
};

struct JudgedSample {
  std::string text;
  Verdict verdict;
};

// options.n samples for each prompt from `model` (ending at EOS or max_new_tokens), judged.
std::vector<std::vector<JudgedSample>> sample_and_judge(LlamaForCausalLM& model,
                                                        const Tokenizer& tokenizer,
                                                        const std::vector<RlPrompt>& prompts,
                                                        const SampleOptions& options);

// The mean score of every sample (0 when there are none).
double mean_score(const std::vector<std::vector<JudgedSample>>& samples);

// A preference pair for each prompt with an incorrect sample: rejected is its first incorrect
// sample, chosen its first correct one or, with ground_truth_fallback (for tasks whose ground
// truth is itself a complete answer), the ground truth when no sample is correct; prompts with
// no chosen side are skipped. Rows in a format the preference loader reads: chat prompts as
// {"chosen": messages, "rejected": messages}, text prompts as {"prompt", "chosen", "rejected"}.
std::vector<nlohmann::json> preference_pairs(const std::vector<RlPrompt>& prompts,
                                             const std::vector<std::vector<JudgedSample>>& samples,
                                             bool ground_truth_fallback);

}  // namespace flywheel
