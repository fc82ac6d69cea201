// Tokens and n-grams for contamination checks, split the way Tulu 3's decontamination matches
// text (open-instruct's decontamination/index.py and search.py). Its Elasticsearch index analyzes
// training text with a pattern analyzer, `[ ,.?!:;()"-]|\n|\\` with lowercase on: a token is a
// maximal run of characters other than space , . ? ! : ; ( ) " - newline and backslash, lowercased;
// empty tokens are dropped. Its n-gram queries are "match_phrase" queries analyzed the same way,
// so two texts share an n-gram when they have n equal consecutive tokens. Tabs and carriage
// returns are not separators there, so "a\tb" is one token here too.
//
// Where this differs: lowercasing covers ASCII letters (Elasticsearch lowercases all of Unicode,
// so "É" and "é" differ here); and open-instruct places a test instance's n-grams and counts its
// tokens with spaCy before Elasticsearch re-analyzes them, while here both sides use the analyzer's
// tokens — punctuation, a token of its own for spaCy, is neither counted nor matched.
//
// Tokens are kept as 64-bit hashes; an n-gram's hash mixes its n token hashes in order. Two
// different n-grams collide with probability about 2^-64 per pair.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace flywheel {

// Appends the hashes of `text`'s tokens to *out, in order.
void append_token_hashes(std::string_view text, std::vector<uint64_t>* out);

// Appends the hash of every n consecutive entries of tokens[begin, end): the one starting at
// tokens[begin + i] is the i-th appended. Nothing when the range has fewer than n tokens.
void append_ngram_hashes(const std::vector<uint64_t>& tokens, size_t begin, size_t end, int n,
                         std::vector<uint64_t>* out);

}  // namespace flywheel
