// Incremental (streaming) detokenization: ids in one at a time, text out as soon as it is
// final. A token can end in the middle of a multi-byte character (byte-level BPE, or
// SentencePiece's byte fallback); such bytes decode to U+FFFD until the character's last byte
// arrives, so text ending in U+FFFD is held back rather than emitted half-made. Each step
// decodes the ids since the last emission with the previous emission's ids in front, so
// SentencePiece's "drop the leading space of the first piece" rule applies only where it
// applies to the whole sequence: the concatenation of everything push() and finish() return
// equals decode() of all the ids for every tokenizer whose decoding of a sequence extends the
// decoding of its prefixes (both backends, as the tests check on every golden case); were a
// later id to rewrite text already returned, finish() returns only what follows the part the
// two decodings share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/text/tokenizer.h"

namespace flywheel {

class DecodeStream {
 public:
  // keep_special as in Tokenizer::decode. The tokenizer must outlive the stream.
  explicit DecodeStream(const Tokenizer& tokenizer, bool keep_special = false)
      : tokenizer_(tokenizer), keep_special_(keep_special) {}

  // The text that `id` completes ("" while a character is still incomplete).
  std::string push(int64_t id);
  // Whatever is held back (incomplete bytes decode to U+FFFD, as decode() would write them).
  std::string finish();

 private:
  std::string step(bool final);

  const Tokenizer& tokenizer_;
  bool keep_special_;
  std::vector<int64_t> context_;  // the ids of the last emission
  std::vector<int64_t> pending_;  // ids not yet emitted
};

}  // namespace flywheel
