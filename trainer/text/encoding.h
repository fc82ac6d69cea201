// A tokenized text with the input bytes behind each token, shared by both tokenizer backends.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace flywheel {

struct Encoding {
  std::vector<int64_t> ids;
  // Byte span [begin, end) of each token in the input text (special tokens: their literal;
  // tokens the input has no bytes for, such as a prefix space, an empty span).
  std::vector<std::pair<size_t, size_t>> spans;
};

}  // namespace flywheel
