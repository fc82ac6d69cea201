// Tokenized examples laid end to end in flat arrays, in memory or memory-mapped from a cache
// file, so that the ranks of a node share one copy of a data set instead of each holding (and
// first tokenizing) its own.
//
//   ids              int32 [N]      every sequence's tokens, one after another
//   loss_mask        uint8 [N]      1 = trained
//   sequence_offsets int64 [S + 1]  sequence s is [sequence_offsets[s], sequence_offsets[s + 1])
//   example_offsets  int64 [E + 1]  example e is sequences [example_offsets[e], ...[e + 1]):
//                                   one for SFT, chosen and rejected for a pair, best to worst
//                                   for a ranking
//
// The file is "FWTOKENS" (8 bytes), a little-endian u64 header length, a JSON header
// {"examples", "sequences", "tokens", "metadata": {string: string}} padded to 8 bytes, then the
// four arrays in the order above. Opening checks every size and offset, so a truncated or
// damaged file is a UserError, never an out-of-bounds read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "trainer/data/examples.h"

namespace flywheel {

// One sequence of a TokenStore (valid while the store lives).
struct TokenView {
  std::span<const int32_t> ids;
  std::span<const uint8_t> loss_mask;

  int64_t size() const { return static_cast<int64_t>(ids.size()); }
  // Tokens before the first trained token (size() when nothing is trained).
  int64_t prompt_length() const;
  int64_t loss_token_count() const;
};

class TokenStore {
 public:
  TokenStore();  // empty
  ~TokenStore();
  TokenStore(TokenStore&&) noexcept;
  TokenStore& operator=(TokenStore&&) noexcept;

  // Appends one example of `sequences` (in memory only).
  void add(const std::vector<const TokenSequence*>& sequences);
  // Maps a file written by write(); UserError naming the file and the defect otherwise.
  static TokenStore open(const std::string& path);
  // Writes this store and `metadata` to `path` atomically (a temporary file, then a rename).
  void write(const std::string& path, const std::map<std::string, std::string>& metadata) const;

  int64_t examples() const { return num_examples_; }
  int64_t sequences_of(int64_t example) const;
  TokenView sequence(int64_t example, int64_t k = 0) const;
  // Sequence k of each of `examples`, in order; of every example.
  std::vector<TokenView> sequences(const std::vector<int64_t>& examples, int64_t k = 0) const;
  std::vector<TokenView> all_sequences(int64_t k = 0) const;
  int64_t tokens() const { return num_tokens_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Mapping;
  // In memory: the vectors own the data; mapped: they are empty and mapping_ does.
  std::vector<int32_t> ids_;
  std::vector<uint8_t> mask_;
  std::vector<int64_t> sequence_offsets_ = {0}, example_offsets_ = {0};
  std::unique_ptr<Mapping> mapping_;
  const int32_t* id_data_ = nullptr;
  const uint8_t* mask_data_ = nullptr;
  const int64_t* sequence_data_ = nullptr;
  const int64_t* example_data_ = nullptr;
  int64_t num_examples_ = 0, num_tokens_ = 0;
  std::map<std::string, std::string> metadata_;

  void point_at_vectors();
};

}  // namespace flywheel
