// The tokenizer of a model, over either backend: a SentencePiece `tokenizer.model`, or a
// Hugging Face `tokenizer.json` (byte-level BPE, see hf_tokenizer.h). A model directory with both
// uses tokenizer.json, as Hugging Face's fast tokenizers do.
//
// Special tokens follow Hugging Face's precedence. The tokenizer's own bos/eos/pad come from
// `tokenizer_config.json` (bos_token/eos_token/pad_token as strings or {"content": ...}
// objects), else from the backend (SentencePiece's model ids; tokenizer.json's post-processor
// prefix as bos). `config.json` and `generation_config.json` do not change them, as they do not
// change a Hugging Face tokenizer: they say when generation stops (stop_ids(): the
// generation config's eos_token_id, else config.json's, else the tokenizer's eos; each an id or
// a list), which for chat models is often more than one token (Llama 3: <|eot_id|> and
// <|end_of_text|>).
//
// The chat template is `chat_template.jinja` when the directory has one, else the
// tokenizer_config.json's `chat_template` (a string, or a list of {name, template} whose
// "default" entry is used).
//
// SentencePiece text containing special-token strings (control pieces of the model such as
// "<s>", "</s>", "[INST]", and the bos/eos/pad strings) is split on them first: the special
// strings become their ids and each chunk in between is encoded by SentencePiece (with its
// dummy-prefix rule applied per chunk, as Hugging Face's legacy Llama tokenizer does).
// tokenizer.json splits out its own added tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trainer/text/encoding.h"
#include "trainer/text/hf_tokenizer.h"

namespace flywheel {

class SentencePieceBackend;
namespace jinja {
class Template;
}

class Tokenizer {
 public:
  // Loads a `tokenizer.json` (a path ending in .json) or a SentencePiece model; UserError if
  // missing or unreadable.
  static Tokenizer from_file(const std::string& model_path);
  // Loads `dir/tokenizer.json`, else `dir/tokenizer.model`, with the special tokens, stop ids
  // and chat template of the directory's config files (see above).
  static Tokenizer from_dir(const std::string& dir);

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Encodes text; adds bos first when add_bos. Special-token strings are split out.
  std::vector<int64_t> encode(const std::string& text, bool add_bos = false) const;
  Encoding encode_with_spans(const std::string& text) const;
  // Hugging Face's add_special_tokens: tokenizer.json's post-processor tokens (before and
  // after), SentencePiece's bos.
  std::vector<int64_t> encode_with_special_tokens(const std::string& text) const;
  // Decodes ids to text; special tokens (bos/eos/pad/control, tokenizer.json's special added
  // tokens) are skipped unless keep_special, and so are ids past the vocabulary.
  std::string decode(const std::vector<int64_t>& ids, bool keep_special = false) const;
  std::string id_to_piece(int64_t id) const;
  // The id of a piece or added token, -1 when there is none.
  int64_t piece_to_id(const std::string& piece) const;
  bool is_special(int64_t id) const;

  int64_t vocab_size() const;
  // "tokenizer.json" or "sentencepiece".
  const char* backend() const { return hf_ ? "tokenizer.json" : "sentencepiece"; }
  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  // Falls back to eos when the model defines no pad (the common Llama convention).
  int64_t pad_id() const { return pad_id_ >= 0 ? pad_id_ : eos_id_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  // The ids that end generation (see above); never empty when the tokenizer has an eos.
  std::vector<int64_t> stop_ids() const;
  // The model's own chat template, "" when it ships none.
  const std::string& chat_template() const { return chat_template_; }
  // The built-in template a Flywheel run trained this model with ("" if none recorded), which
  // `auto` renders when the model has no template of its own.
  const std::string& trained_template() const { return trained_template_; }
  // Where the chat template was read from, for its error messages.
  const std::string& chat_template_source() const { return chat_template_source_; }
  // The chat template parsed, once, on first use (a UserError naming the template's file and
  // line if it does not parse); null when the model ships none.
  std::shared_ptr<const jinja::Template> compiled_chat_template() const;

  void set_bos(int64_t id);
  void set_eos(int64_t id);
  void set_pad(int64_t id);

 private:
  Tokenizer();
  void set_special(int64_t id, int64_t* slot, std::string* token, const char* what);

  std::unique_ptr<SentencePieceBackend> sp_;  // exactly one of sp_ and hf_
  std::optional<HfTokenizer> hf_;
  int64_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
  std::string bos_token_, eos_token_;
  std::vector<int64_t> generation_eos_;  // from generation_config.json / config.json
  std::string chat_template_, chat_template_source_, trained_template_;
  // Shared by moved-from copies; parsed under its once_flag when first rendered, so data
  // loading threads render without a lock.
  struct CompiledTemplate;
  std::shared_ptr<CompiledTemplate> compiled_;
  std::vector<std::pair<std::string, int64_t>> specials_;  // literal -> id, longest first
};

}  // namespace flywheel
