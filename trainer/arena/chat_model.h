// A Hugging Face model directory loaded as `flywheel generate` loads one (weights, tokenizer,
// stop ids), replying to conversations with the rollout engine through a chat template: what
// an arena player and an LLM judge both are.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "rollout/engine.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/text/chat_template.h"
#include "trainer/text/tokenizer.h"

namespace flywheel {

struct ReplyOptions {
  int64_t max_new_tokens = 1024;  // capped per conversation at what the context has left
  SamplingParams sampling = greedy_sampling();
  uint64_t seed = 0;
  std::string chat_template = kAutoChatTemplate;  // the model's own, else tulu
  // A prompt given as text (one user turn) goes in as its tokens (after BOS with add_bos), not
  // through the template: how a training run reads a "prompt" string (the SFT loader, the RL
  // loop).
  bool plain_text_prompts = false;
  bool add_bos = true;
  int64_t max_num_seqs = 256;  // conversations in flight at most

  static SamplingParams greedy_sampling() {
    SamplingParams s;
    s.temperature = 0;
    return s;
  }
};

class ChatModel {
 public:
  // UserError when `dir` has no tokenizer (tokenizer.json or tokenizer.model).
  ChatModel(const std::string& dir, const LoadOptions& load);
  // A model already in memory (a training run's policy): its own parameters, no copy. `name`
  // stands for the directory in messages.
  ChatModel(LlamaForCausalLM model, Tokenizer tokenizer, std::string name);

  // One reply to each conversation ([{"role", "content"}], ending with a user turn; or a string:
  // plain text, ReplyOptions::add_bos), in order.
  // where[i] ("FILE:LINE" or a question id) prefixes the UserError for a conversation the
  // template cannot render or the context cannot hold with room for one new token.
  std::vector<Completion> reply(const std::vector<nlohmann::ordered_json>& conversations,
                                const std::vector<std::string>& where, const ReplyOptions& options);

  const std::string& dir() const { return dir_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  std::string dir_;
  LlamaForCausalLM model_;
  Tokenizer tokenizer_;
};

}  // namespace flywheel
