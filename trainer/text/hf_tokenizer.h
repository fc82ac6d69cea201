// Hugging Face `tokenizer.json` tokenizers, byte-level BPE as Llama 3, Qwen and most current
// open models publish them: normalizer (NFC / NFKC, or a Sequence of them), pre-tokenizer
// (Split on a Unicode regex, ByteLevel, or a Sequence), the BPE model (merges as "a b" strings or
// [a, b] pairs, ignore_merges), added tokens split out of the text before anything else, the
// TemplateProcessing post-processor's special tokens, and the ByteLevel decoder. A component of
// another type is a UserError naming it, never a silent fallback.
//
// Regexes run on PCRE2 (Unicode properties, lookahead, case-insensitive groups), compiled once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/text/encoding.h"

namespace flywheel {

class HfTokenizer {
 public:
  // UserError naming the file and the component for anything unreadable or unsupported.
  static HfTokenizer from_file(const std::string& path);

  // add_special_tokens: the post-processor's tokens (Llama 3's <|begin_of_text|>).
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens) const;
  // Without the post-processor's tokens; spans index `text` (see Encoding).
  Encoding encode_with_spans(const std::string& text) const;
  // Invalid UTF-8 in the decoded bytes becomes U+FFFD, as Hugging Face's decoder does.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const;

  int64_t vocab_size() const;
  // The id of a token (a vocabulary piece or an added token), -1 when there is none.
  int64_t token_to_id(const std::string& token) const;
  // The piece or added token of an id ("" for an id with neither).
  std::string id_to_token(int64_t id) const;
  // An added token marked `special` (skipped by decode when asked).
  bool is_special(int64_t id) const;
  // The ids TemplateProcessing puts before a single sequence (Llama 3: <|begin_of_text|>).
  const std::vector<int64_t>& prefix_ids() const;

  struct Impl;

 private:
  explicit HfTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace flywheel
