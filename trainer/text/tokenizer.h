// SentencePiece tokenizer with the special-token handling Hugging Face applies on top of it.
//
// Special ids (bos/eos/pad) come from the SentencePiece model and can be overridden by a
// model directory's `tokenizer_config.json` (bos_token/eos_token/pad_token as strings or
// {"content": ...} objects) and then by `config.json` (bos_token_id/eos_token_id/pad_token_id;
// eos_token_id may be a list, the first entry is the primary eos).
//
// Text containing special-token strings (control pieces of the model such as "<s>", "</s>",
// "[INST]", and the bos/eos/pad strings) is split on them first: the special strings become
// their ids and each chunk in between is encoded by SentencePiece (with its dummy-prefix rule
// applied per chunk, as Hugging Face's legacy Llama tokenizer does).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace flywheel {

class SentencePieceBackend;

struct Encoding {
  std::vector<int64_t> ids;
  // Byte span [begin, end) of each token in the input text (special tokens: their literal).
  std::vector<std::pair<size_t, size_t>> spans;
};

class Tokenizer {
 public:
  // Loads `tokenizer.model` from a file; UserError if missing or not a SentencePiece model.
  static Tokenizer from_file(const std::string& model_path);
  // Loads `dir/tokenizer.model` and applies the overrides from `dir/tokenizer_config.json`
  // and `dir/config.json` when present.
  static Tokenizer from_dir(const std::string& dir);

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Encodes text; adds bos first when add_bos. Special-token strings are split out.
  std::vector<int64_t> encode(const std::string& text, bool add_bos = false) const;
  Encoding encode_with_spans(const std::string& text) const;
  // Decodes ids to text; special tokens (bos/eos/pad/control) are skipped.
  std::string decode(const std::vector<int64_t>& ids) const;
  std::string id_to_piece(int64_t id) const;

  int64_t vocab_size() const;
  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  // Falls back to eos when the model defines no pad (the common Llama convention).
  int64_t pad_id() const { return pad_id_ >= 0 ? pad_id_ : eos_id_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

  void set_bos(int64_t id);
  void set_eos(int64_t id);
  void set_pad(int64_t id);

 private:
  Tokenizer();
  std::unique_ptr<SentencePieceBackend> sp_;
  int64_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
  std::string bos_token_, eos_token_;
  std::vector<std::pair<std::string, int64_t>> specials_;  // literal -> id, longest first
};

}  // namespace flywheel
