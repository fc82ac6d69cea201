// Scoring with a neural reward model: batched, in process, on the model's device and dtype.
// The score of a sequence is the model's output at its last real token, read exactly as reward
// training reads it (right-padded rows through LlamaForSequenceClassification::forward), so a
// score here equals the score the trainer saw for the same tokens. (prompt, response) texts are
// tokenized as the SFT loader tokenizes {"prompt", "completion"}: raw text ([bos] prompt
// response eos) without a chat template, or a user turn and an assistant turn with one.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "trainer/data/examples.h"
#include "trainer/model/reward_model.h"
#include "trainer/text/tokenizer.h"

namespace flywheel {

struct RewardScorerOptions {
  int64_t batch_size = 16;    // sequences per forward
  std::string chat_template;  // empty: raw text
  bool add_bos = true;
};

class RewardScorer {
 public:
  // Keeps references: `model` and `tokenizer` must outlive the scorer.
  RewardScorer(LlamaForSequenceClassification model, const Tokenizer& tokenizer,
               RewardScorerOptions options);

  // One score per sequence (prompt and response token ids together), in input order. Sequences
  // are batched by length, so padding stays small; the scores do not depend on the batching.
  std::vector<double> score(const std::vector<std::vector<int64_t>>& sequences);

  std::vector<int64_t> encode(const std::string& prompt, const std::string& response) const;
  std::vector<double> score_texts(
      const std::vector<std::pair<std::string, std::string>>& prompt_response);

 private:
  LlamaForSequenceClassification model_;
  const Tokenizer& tokenizer_;
  RewardScorerOptions options_;
};

}  // namespace flywheel
