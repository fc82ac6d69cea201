// Training examples: JSONL records turned into token sequences with a loss mask.
//
// Each loader reads a JSONL file (plain or .gz) and recognises the format of every record by
// its keys; extra keys (ids, scores, sources) are ignored.
//
// SFT
//   {"messages": [{"role", "content"}, ...]}
//       chat template; trains every assistant turn
//   {"prompt": "...", "completion": "..."}
//       raw text, no template (as TRL): [bos] prompt completion eos; trains completion + eos
//   {"prompt": [messages], "completion": [messages]}
//       chat template; trains the completion's assistant turns
// preference
//   {"chosen": [messages], "rejected": [messages]}
//       Tulu 3 / UltraFeedback full conversations (a string "prompt" key is ignored)
//   {"prompt": "...", "chosen": "...", "rejected": "..."}
//       raw text, each side as an SFT prompt/completion pair
//   {"prompt": [messages], "chosen": [messages], "rejected": [messages]}
//       TRL conversational, each side as an SFT prompt/completion pair
//   {"chosen": "\n\nHuman: ...\n\nAssistant: ...", "rejected": "..."}
//       Anthropic HH text, parsed into user/assistant messages: full conversations
// ranking
//   {"prompt": p, "responses": [r0, r1, ...], "ranking": [best index, ..., worst index]}
//       p and every r are all strings (raw text) or all message lists (chat template)
//
// For full conversations the prompt is the longest run of messages both sides share, but
// never a side's final message, which must be the assistant's. Only the assistant turns after
// the prompt are trained: normally just the final one. The shared turns are identical on both
// sides, so training them adds nothing to the preference and would dilute length-normalised
// losses (SimPO, dpo_norm) and sequence log-prob sums with tokens that carry no signal. When
// the sides differ earlier (9 of 2354 HH test records, e.g. an extra assistant turn), every
// assistant turn after the shared part is trained (TRL's extract_prompt likewise takes the
// longest shared prefix as the prompt).
//
// Every bad record is a UserError "FILE:LINE: key 'messages[2].role': expected ..., got ...";
// with skip_invalid it is counted and skipped instead. Over-long examples follow `overlong`.
// Every non-blank line lands in exactly one of: examples (possibly truncated), dropped_overlong,
// skipped_invalid.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/text/tokenizer.h"

namespace flywheel {

struct TokenSequence {
  std::vector<int64_t> ids;
  std::vector<uint8_t> loss_mask;  // 1 = trained; same length as ids

  // Tokens before the first trained token (ids.size() when nothing is trained).
  int64_t prompt_length() const;
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

struct SftExample {
  TokenSequence seq;
};

struct PreferenceExample {
  TokenSequence chosen, rejected;
};

struct RankingExample {
  std::vector<TokenSequence> responses;  // best -> worst, each prompt + response
};

struct DataOptions {
  // "auto": the model's own template when it has one, else tulu; see chat_template.h.
  std::string chat_template = "auto";
  int64_t max_length = 2048;  // tokens per sequence, prompt included
  // "truncate_prompt": drop prompt tokens from the left (after bos) until the example fits,
  // and drop the example if its responses alone do not fit; "drop": drop every over-long one.
  std::string overlong = "truncate_prompt";
  bool skip_invalid = false;  // count and skip bad records instead of failing
  bool add_bos = true;        // prepend the tokenizer's bos (templates that write it ignore this)

  // UserError "WHERE: key 'overlong': expected ..., got ..." for an invalid value.
  void validate(const std::string& where) const;
};

struct DataStats {
  int64_t records = 0;           // non-blank lines read
  int64_t examples = 0;          // examples returned, truncated ones included
  int64_t truncated = 0;         // examples whose prompt was shortened to fit max_length
  int64_t dropped_overlong = 0;  // records dropped for not fitting max_length
  int64_t skipped_invalid = 0;   // invalid records skipped (skip_invalid)
  std::string first_invalid;     // the error of the first skipped record, for the log

  // Adds another file's counts (keeping the first invalid record seen).
  void add(const DataStats& other);

  // "2354 records: 2350 examples (3 truncated), 4 dropped as over-long, 0 skipped as invalid",
  // followed by " (first: FILE:LINE: ...)" when records were skipped.
  std::string summary() const;
};

// Each loader validates `options`, reads the whole file and adds its counts to *stats (which
// may be null). UserError for a missing or unreadable file, and for an invalid record unless
// options.skip_invalid. Records are parsed and tokenized by `threads` threads; the result is
// the same for any number.
std::vector<SftExample> load_sft_examples(const std::string& path, const Tokenizer& tokenizer,
                                          const DataOptions& options, DataStats* stats,
                                          int threads = 1);
std::vector<PreferenceExample> load_preference_examples(const std::string& path,
                                                        const Tokenizer& tokenizer,
                                                        const DataOptions& options,
                                                        DataStats* stats, int threads = 1);
std::vector<RankingExample> load_ranking_examples(const std::string& path,
                                                  const Tokenizer& tokenizer,
                                                  const DataOptions& options, DataStats* stats,
                                                  int threads = 1);

// One record in any of the SFT formats above, tokenized exactly as the loaders tokenize it
// (no length fitting): what a reward model scoring (prompt, response) pairs reads.
// UserError "key '...': expected ..." when the record is invalid.
TokenSequence encode_sft_record(const nlohmann::json& record, const Tokenizer& tokenizer,
                                const DataOptions& options);

class TokenStore;
enum class ExampleKind { kSft, kPreference, kRanking };

// The same examples appended to `store` as they are made (trainer/data/token_store.h): one
// sequence each for SFT, chosen then rejected for pairs, best to worst for rankings.
void load_examples_into(ExampleKind kind, const std::string& path, const Tokenizer& tokenizer,
                        const DataOptions& options, int threads, DataStats* stats,
                        TokenStore* store);

}  // namespace flywheel
