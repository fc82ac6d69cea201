// The prompts of an online RL run: RLVR rows as open-instruct writes them, rendered for
// generation.
//   {"messages": [... ending with the user's turn], "ground_truth": ..., "dataset": "gsm8k"}
//       chat template with the assistant header appended (data.chat_template)
//   {"prompt": "text", "ground_truth": ..., "dataset": ...}
//       raw text: [bos] prompt (data.add_bos), as the SFT loader reads prompt/completion text
// "ground_truth" is a string or a number (or absent for checkers that need none); "dataset"
// names the verifier (verifiers/verifier.h) unless the recipe's rl.verifier overrides it. The
// whole row goes to the verifier as its fields (IFEval reads instruction_id_list and kwargs
// from there). Prompts longer than data.max_length tokens are dropped and counted.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/examples.h"
#include "trainer/text/tokenizer.h"

namespace flywheel {

struct RlPrompt {
  std::vector<int64_t> ids;  // rendered, ready for the assistant's reply
  std::string text;          // the user's last message (or the raw prompt), for verifiers
  bool chat = false;         // rendered with the chat template (from "messages")
  std::string ground_truth;
  std::string verifier;  // a name for find_verifier(); empty: none (a reward model scores)
  nlohmann::json fields;
};

// UserError "FILE:LINE: ..." for a bad row (or, with skip_invalid, the row is counted and
// skipped), an unknown verifier, or a file without prompts. With `verifier_optional` (a reward
// model scores the responses) a row without "dataset" gets no verifier (an empty name).
std::vector<RlPrompt> load_rl_prompts(const std::string& path, const Tokenizer& tokenizer,
                                      const DataOptions& options,
                                      const std::string& verifier_override, DataStats* stats,
                                      bool verifier_optional = false);

}  // namespace flywheel
