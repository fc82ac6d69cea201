// The decoders of SentencePiece-style tokenizer.json files, applied in order to the list of
// token strings, as Hugging Face's decode_chain does: Replace (a string pattern), ByteFallback
// (runs of <0xXX> tokens become their bytes, or one U+FFFD per byte when those are not valid
// UTF-8), Fuse (one string), Strip (up to `start` / `stop` copies of a character off each end of
// every token) and Metaspace (the replacement character back to a space; the first token's
// leading space dropped unless prepend_scheme is "never").
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace flywheel {

struct HfDecodeStep {
  enum class Kind { kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind;
  std::string from, to;  // Replace: pattern and content; Metaspace: the replacement character
  size_t start = 0, stop = 0;
  bool strip_first = false;  // Metaspace: drop the first token's leading space
};

// The steps of a decoder (a Sequence or one step); UserError naming an unsupported type.
std::vector<HfDecodeStep> parse_hf_decoder(const nlohmann::json& decoder, const std::string& where);

// Bytes as UTF-8 with each invalid sequence replaced by U+FFFD (Rust's from_utf8_lossy, which
// Hugging Face's decoders use).
std::string lossy_utf8(const std::string& bytes);

std::vector<std::string> apply_hf_decoder(const std::vector<HfDecodeStep>& steps,
                                          std::vector<std::string> tokens);

}  // namespace flywheel
