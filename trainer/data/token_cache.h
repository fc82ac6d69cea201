// Tokenizing a data file once per node: the examples go into a cache file of token arrays
// (trainer/data/token_store.h) that every rank memory-maps, keyed by everything they depend on,
// so a changed file, tokenizer, template or max_length makes a new one.
#pragma once

#include <string>

#include "trainer/data/examples.h"
#include "trainer/data/token_store.h"

namespace flywheel {

struct TokenCacheOptions {
  std::string dir;            // where cache files live; "" = tokenize into memory, no file
  std::string tokenizer_dir;  // the tokenizer's files, part of the key
  int threads = 1;            // for tokenizing
};

struct LoadedTokens {
  TokenStore store;
  DataStats stats;
  std::string report;  // "FILE: <stats summary>; <tokenized ... | from cache ...>"
};

// `path`'s examples of `kind`: memory-mapped from DIR/<name>-<kind>-<key>.tokens when it exists
// and was made from the same file (canonical path, size, modification time), the same tokenizer
// files and the same data options; otherwise tokenized with `threads` threads and, with a cache
// dir, written there atomically (concurrent writers of one key write the same bytes) and
// mapped. A damaged cache file is reported in the report and made again.
LoadedTokens load_tokens(ExampleKind kind, const std::string& path, const Tokenizer& tokenizer,
                         const DataOptions& options, const TokenCacheOptions& cache);

// $FLYWHEEL_CACHE_DIR/tokens, else $XDG_CACHE_HOME/flywheel/tokens, else
// $HOME/.cache/flywheel/tokens.
std::string default_token_cache_dir();

}  // namespace flywheel
