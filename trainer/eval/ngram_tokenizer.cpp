#include "trainer/eval/ngram_tokenizer.h"

#include <array>

namespace flywheel {
namespace {

// Per byte: 0 for a separator, else the byte lowercased (ASCII).
constexpr std::array<unsigned char, 256> make_table() {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  for (unsigned char c : std::string_view(" ,.?!:;()\"-\n\\"))
    t[c] = 0;
  return t;
}
constexpr std::array<unsigned char, 256> kTable = make_table();

// splitmix64's finalizer: spreads every input bit over the whole word.
uint64_t mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

}  // namespace

void append_token_hashes(std::string_view text, std::vector<uint64_t>* out) {
  uint64_t h = kFnvOffset;
  bool in_token = false;
  for (char ch : text) {
    const unsigned char c = kTable[static_cast<unsigned char>(ch)];
    if (c == 0) {
      if (in_token) out->push_back(mix(h));
      h = kFnvOffset;
      in_token = false;
    } else {
      h = (h ^ c) * kFnvPrime;  // FNV-1a over the lowercased bytes
      in_token = true;
    }
  }
  if (in_token) out->push_back(mix(h));
}

void append_ngram_hashes(const std::vector<uint64_t>& tokens, size_t begin, size_t end, int n,
                         std::vector<uint64_t>* out) {
  const size_t width = static_cast<size_t>(n);
  if (end < begin + width) return;
  for (size_t i = begin; i + width <= end; ++i) {
    uint64_t h = width;
    for (size_t k = 0; k < width; ++k)
      h = mix(h + tokens[i + k]);
    out->push_back(h);
  }
}

}  // namespace flywheel
