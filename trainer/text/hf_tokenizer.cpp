#include "trainer/text/hf_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "trainer/core/error.h"
#include "trainer/text/hf_decoder.h"

namespace flywheel {

using nlohmann::json;

namespace {

// GPT-2's byte <-> character table: printable bytes stand for themselves, the others for
// code points from 256 on, so every byte sequence is a string of visible characters.
struct ByteTable {
  std::string to_char[256];                       // UTF-8 of each byte's character
  std::unordered_map<uint32_t, uint8_t> to_byte;  // code point -> byte

  ByteTable() {
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      const uint32_t cp =
          printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + next++);
      to_char[b] = utf8(cp);
      to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
  static std::string utf8(uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
  }
};

const ByteTable& byte_table() {
  static const ByteTable table;
  return table;
}

// The length of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// A compiled PCRE2 pattern, JIT-compiled when the platform allows. Match data is per call.
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      throw UserError(where + ": regex " + pattern + " does not compile at offset " +
                      std::to_string(offset) + ": " + reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The [begin, end) byte ranges of every non-overlapping match in `text`.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const {
    std::vector<std::pair<size_t, size_t>> out;
    pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_, nullptr);
    size_t start = 0;
    while (start <= text.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                                 start, 0, data, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      // A resource limit (JIT stack, match limit) must not pass for "no more matches".
      if (rc < 0) {
        pcre2_match_data_free(data);
        throw UserError("tokenizer regex failed on a text (PCRE2 error " + std::to_string(rc) +
                        ")");
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data);
      size_t b = ov[0], e = ov[1];
      if (e == b) {  // an empty match: step over one character
        if (b >= text.size()) break;
        start = b + utf8_length(static_cast<unsigned char>(text[b]));
        continue;
      }
      out.emplace_back(b, e);
      start = e;
    }
    pcre2_match_data_free(data);
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
};

// GPT-2's pre-tokenizer regex, which ByteLevel applies when use_regex is set.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// SentencePiece's word-boundary mark, which Metaspace writes for every space.
constexpr const char* kMetaspace = "\xE2\x96\x81";

struct PreTokenizer {
  enum class Kind { kSplit, kByteLevel, kMetaspace } kind;
  std::shared_ptr<Regex> regex;   // Split: the pattern; ByteLevel: GPT-2's when use_regex
  bool add_prefix_space = false;  // ByteLevel; Metaspace: prepend_scheme "always"
  bool prepend_first = false;     // Metaspace: prepend_scheme "first"
  bool split = false;             // Metaspace: a new piece at every mark
};

// A pre-tokenized piece: `text`'s first `phantom` bytes were inserted (ByteLevel's prefix
// space) and the rest stand for the normalized input's bytes from `begin` on.
struct Piece {
  std::string text;
  size_t begin = 0, phantom = 0;
};

struct AddedToken {
  int64_t id;
  std::string content;
  bool special, lstrip, rstrip;
};

}  // namespace

struct HfTokenizer::Impl {
  std::string source;
  std::vector<const icu::Normalizer2*> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  std::unordered_map<std::string, int64_t> vocab;
  std::vector<std::string> id_to_token;  // "" where an id has no vocabulary piece
  std::unordered_map<uint64_t, std::pair<int32_t, int64_t>> merges;  // (a, b) -> (rank, id)
  bool ignore_merges = false;
  std::vector<AddedToken> added;                 // longest content first
  std::vector<size_t> added_by_first_byte[256];  // indices into `added`, longest first
  std::unordered_map<int64_t, size_t> added_by_id;
  std::vector<int64_t> prefix_ids, suffix_ids;  // TemplateProcessing's single sequence
  bool byte_level_decoder = false;
  std::vector<HfDecodeStep> decoder;  // the other decoders, in order
  bool byte_fallback = false;         // characters without a piece become <0xXX> pieces
  int64_t byte_ids[256];              // the <0xXX> pieces (-1 where missing)
  int64_t unk_id = -1;
  bool fuse_unk = false;
  // Input bytes each vocabulary piece stands for (ByteLevel: one per character), for spans;
  // false when a Split runs after ByteLevel's byte mapping, which spans cannot follow.
  std::vector<uint32_t> token_bytes;
  bool spans_exact = true;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache;
  mutable std::mutex cache_mutex;

  std::string normalize(const std::string& text) const;
  // at_input_start: the text begins the input (Metaspace's prepend_scheme "first").
  std::vector<Piece> pre_tokenize(const std::string& text, bool at_input_start) const;
  std::vector<int64_t> bpe(const std::string& word) const;
  // (normalized offset, input offset) pairs where a chunk and its normalization line up.
  std::vector<std::pair<size_t, size_t>> alignment(const std::string& chunk,
                                                   const std::string& normalized) const;
  // Encodes text[begin, end) (no added tokens in it), appending ids and, when asked, spans.
  void encode_plain(const std::string& text, size_t begin, size_t end, Encoding* out,
                    bool with_spans) const;
  void encode(const std::string& text, bool add_special_tokens, Encoding* out,
              bool with_spans) const;
};

namespace {

std::string component(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>()
                                                                      : std::string("?");
}

void add_normalizer(const json& j, const std::string& where, HfTokenizer::Impl* t) {
  if (j.is_null()) return;
  const auto type = component(j);
  UErrorCode status = U_ZERO_ERROR;
  if (type == "Sequence") {
    for (const auto& n : j.at("normalizers"))
      add_normalizer(n, where, t);
  } else if (type == "NFC") {
    t->normalizers.push_back(icu::Normalizer2::getNFCInstance(status));
  } else if (type == "NFKC") {
    t->normalizers.push_back(icu::Normalizer2::getNFKCInstance(status));
  } else {
    throw UserError(where + ": normalizer type '" + type +
                    "' is not supported (NFC, NFKC, Sequence)");
  }
  if (U_FAILURE(status))
    throw UserError(where + ": ICU cannot provide the " + type + " normalizer");
}

void add_pre_tokenizer(const json& j, const std::string& where, HfTokenizer::Impl* t) {
  if (j.is_null()) return;
  const auto type = component(j);
  if (type == "Sequence") {
    for (const auto& p : j.at("pretokenizers"))
      add_pre_tokenizer(p, where, t);
  } else if (type == "Split") {
    const auto& pattern = j.at("pattern");
    if (!pattern.contains("Regex"))
      throw UserError(where + ": Split pre-tokenizer: only a Regex pattern is supported");
    if (j.value("behavior", "") != "Isolated" || j.value("invert", false))
      throw UserError(where + ": Split pre-tokenizer: only behavior Isolated, not inverted");
    PreTokenizer p{PreTokenizer::Kind::kSplit,
                   std::make_shared<Regex>(pattern["Regex"].get<std::string>(), where), false};
    t->pre_tokenizers.push_back(std::move(p));
  } else if (type == "ByteLevel") {
    PreTokenizer p{PreTokenizer::Kind::kByteLevel, nullptr, j.value("add_prefix_space", false)};
    if (j.value("use_regex", true)) p.regex = std::make_shared<Regex>(kGpt2Pattern, where);
    t->pre_tokenizers.push_back(std::move(p));
  } else if (type == "Metaspace") {
    if (j.value("replacement", kMetaspace) != std::string(kMetaspace))
      throw UserError(where + ": Metaspace pre-tokenizer: only the replacement U+2581");
    const std::string scheme = j.contains("prepend_scheme")
                                   ? j["prepend_scheme"].get<std::string>()
                                   : (j.value("add_prefix_space", true) ? "always" : "never");
    if (scheme != "always" && scheme != "first" && scheme != "never")
      throw UserError(where + ": Metaspace prepend_scheme '" + scheme + "' is not supported");
    PreTokenizer p{PreTokenizer::Kind::kMetaspace, nullptr, scheme == "always"};
    p.prepend_first = scheme == "first";
    p.split = j.value("split", true);
    t->pre_tokenizers.push_back(std::move(p));
  } else {
    throw UserError(where + ": pre-tokenizer type '" + type +
                    "' is not supported (Split, ByteLevel, Metaspace, Sequence)");
  }
}

void add_post_processor(const json& j, const std::string& where, HfTokenizer::Impl* t) {
  if (j.is_null()) return;
  const auto type = component(j);
  if (type == "Sequence") {
    for (const auto& p : j.at("processors"))
      add_post_processor(p, where, t);
  } else if (type == "ByteLevel") {
    // Offsets only: the ids are unchanged.
  } else if (type == "TemplateProcessing") {
    bool after = false;
    for (const auto& piece : j.at("single")) {
      if (piece.contains("Sequence")) {
        after = true;
        continue;
      }
      const auto name = piece.at("SpecialToken").at("id").get<std::string>();
      const auto& ids = j.at("special_tokens").at(name).at("ids");
      for (const auto& id : ids)
        (after ? t->suffix_ids : t->prefix_ids).push_back(id.get<int64_t>());
    }
  } else {
    throw UserError(where + ": post-processor type '" + type +
                    "' is not supported (TemplateProcessing, ByteLevel, Sequence)");
  }
}

uint64_t pair_key(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
}

}  // namespace

HfTokenizer HfTokenizer::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UserError(path + ": cannot read the tokenizer");
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw UserError(path + ": not a JSON object");
  auto t = std::make_shared<Impl>();
  t->source = path;
  try {
    const auto& model = j.at("model");
    if (component(model) != "BPE")
      throw UserError(path + ": model type '" + component(model) + "' is not supported (BPE)");
    t->byte_fallback = model.value("byte_fallback", false);
    t->fuse_unk = model.value("fuse_unk", false);
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
        throw UserError(path + ": BPE " + key + " is not supported");
    }
    t->ignore_merges = model.value("ignore_merges", false);
    // Ids index tables, so they must be small non-negative integers.
    const auto checked_id = [&](const json& id, const std::string& key) {
      const auto i = id.get<int64_t>();
      if (i < 0 || i >= (int64_t{1} << 24))
        throw UserError(path + ": " + key + ": id " + std::to_string(i) + " is out of range");
      return i;
    };
    for (const auto& [token, id] : model.at("vocab").items()) {
      const auto i = checked_id(id, "model.vocab['" + token + "']");
      t->vocab[token] = i;
      if (static_cast<size_t>(i) >= t->id_to_token.size()) t->id_to_token.resize(i + 1);
      t->id_to_token[static_cast<size_t>(i)] = token;
    }
    int32_t rank = 0;
    for (const auto& m : model.at("merges")) {
      std::string a, b;
      if (m.is_string()) {
        const auto s = m.get<std::string>();
        const auto space = s.find(' ', 1);
        if (space == std::string::npos) throw UserError(path + ": merge '" + s + "' has no space");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else {
        a = m.at(0).get<std::string>();
        b = m.at(1).get<std::string>();
      }
      const auto ia = t->vocab.find(a), ib = t->vocab.find(b), iab = t->vocab.find(a + b);
      if (ia == t->vocab.end() || ib == t->vocab.end() || iab == t->vocab.end())
        throw UserError(path + ": merge '" + a + " " + b + "' names a piece not in the vocabulary");
      t->merges.emplace(pair_key(ia->second, ib->second), std::make_pair(rank++, iab->second));
    }
    for (const auto& a : j.value("added_tokens", json::array())) {
      AddedToken token{checked_id(a.at("id"), "added_tokens"), a.at("content").get<std::string>(),
                       a.value("special", false), a.value("lstrip", false),
                       a.value("rstrip", false)};
      if (a.value("single_word", false))
        throw UserError(path + ": added token '" + token.content +
                        "': single_word is not supported");
      if (static_cast<size_t>(token.id) >= t->id_to_token.size())
        t->id_to_token.resize(token.id + 1);
      t->added.push_back(std::move(token));
    }
    add_normalizer(j.value("normalizer", json()), path, t.get());
    add_pre_tokenizer(j.value("pre_tokenizer", json()), path, t.get());
    add_post_processor(j.value("post_processor", json()), path, t.get());
    const auto decoder = j.value("decoder", json());
    if (component(decoder) == "ByteLevel") {
      t->byte_level_decoder = true;
    } else if (!decoder.is_null()) {
      t->decoder = parse_hf_decoder(decoder, path);
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      const auto unk = t->vocab.find(model["unk_token"].get<std::string>());
      if (unk == t->vocab.end()) throw UserError(path + ": BPE unk_token is not in the vocabulary");
      t->unk_id = unk->second;
    }
  } catch (const json::exception& e) {
    throw UserError(path + ": unexpected tokenizer.json layout: " + e.what());
  }
  // Spans follow the pieces through one byte-mapping step (ByteLevel, or an unsplit
  // Metaspace) at the end; a split after it would cut the mapped text, which they cannot follow.
  bool byte_level = false, metaspace = false;
  for (const auto& p : t->pre_tokenizers) {
    if (byte_level || metaspace || (p.kind == PreTokenizer::Kind::kMetaspace && p.split))
      t->spans_exact = false;
    byte_level = byte_level || p.kind == PreTokenizer::Kind::kByteLevel;
    metaspace = metaspace || p.kind == PreTokenizer::Kind::kMetaspace;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    const auto it = t->vocab.find(name);
    t->byte_ids[b] = it == t->vocab.end() ? -1 : it->second;
  }
  t->token_bytes.resize(t->id_to_token.size());
  for (size_t id = 0; id < t->id_to_token.size(); ++id) {
    const std::string& piece = t->id_to_token[id];
    uint32_t n = static_cast<uint32_t>(piece.size());
    if (byte_level) {
      n = 0;
      for (const unsigned char c : piece)
        n += (c & 0xC0) != 0x80;
    } else if (metaspace) {
      // A mark stands for one space.
      for (size_t at = piece.find(kMetaspace); at != std::string::npos;
           at = piece.find(kMetaspace, at + 3))
        n -= 2;
    }
    t->token_bytes[id] = n;
  }
  for (const int64_t id : t->byte_ids)
    if (id >= 0) t->token_bytes[static_cast<size_t>(id)] = 1;
  // Added tokens longest first (leftmost-longest matching prefers the longer of two tokens
  // starting at the same place), then indexed by id and by first byte.
  std::stable_sort(t->added.begin(), t->added.end(), [](const AddedToken& a, const AddedToken& b) {
    return a.content.size() > b.content.size();
  });
  for (size_t i = 0; i < t->added.size(); ++i) {
    t->added_by_id[t->added[i].id] = i;
    if (!t->added[i].content.empty())
      t->added_by_first_byte[static_cast<unsigned char>(t->added[i].content[0])].push_back(i);
  }
  return HfTokenizer(std::move(t));
}

std::string HfTokenizer::Impl::normalize(const std::string& text) const {
  if (normalizers.empty()) return text;
  icu::UnicodeString s = icu::UnicodeString::fromUTF8(text);
  for (const auto* n : normalizers) {
    UErrorCode status = U_ZERO_ERROR;
    s = n->normalize(s, status);
    if (U_FAILURE(status)) throw UserError(source + ": normalization failed");
  }
  std::string out;
  s.toUTF8String(out);
  return out;
}

std::vector<Piece> HfTokenizer::Impl::pre_tokenize(const std::string& text,
                                                   bool at_input_start) const {
  std::vector<Piece> pieces = {Piece{text, 0, 0}};
  const auto& table = byte_table();
  for (const auto& p : pre_tokenizers) {
    std::vector<Piece> next;
    if (p.kind == PreTokenizer::Kind::kMetaspace) {
      for (auto& piece : pieces) {
        std::string marked;
        for (const char c : piece.text)
          marked += c == ' ' ? std::string(kMetaspace) : std::string(1, c);
        const bool prepend =
            (p.add_prefix_space || (p.prepend_first && at_input_start && piece.begin == 0)) &&
            marked.compare(0, 3, kMetaspace) != 0;
        if (prepend) {
          marked.insert(0, kMetaspace);
          ++piece.phantom;
        }
        if (!p.split) {
          next.push_back(Piece{std::move(marked), piece.begin, piece.phantom});
          continue;
        }
        // Each mark begins a new piece (Hugging Face's MergedWithNext).
        size_t from = 0;
        for (size_t at = marked.find(kMetaspace, 1); at != std::string::npos;
             at = marked.find(kMetaspace, at + 3)) {
          next.push_back(Piece{marked.substr(from, at - from), piece.begin, 0});
          from = at;
        }
        next.push_back(Piece{marked.substr(from), piece.begin, 0});
      }
      pieces = std::move(next);
      continue;
    }
    for (auto& piece : pieces) {
      if (p.kind == PreTokenizer::Kind::kByteLevel && p.add_prefix_space &&
          (piece.text.empty() || piece.text[0] != ' ')) {
        piece.text.insert(piece.text.begin(), ' ');
        ++piece.phantom;
      }
      if (!p.regex) {
        next.push_back(std::move(piece));
        continue;
      }
      // Isolated: every match is a piece, and so is the text between matches.
      const auto sub = [&](size_t b, size_t e) {
        const size_t phantom = b < piece.phantom ? std::min(e, piece.phantom) - b : 0;
        const size_t begin = piece.begin + (b > piece.phantom ? b - piece.phantom : 0);
        next.push_back(Piece{piece.text.substr(b, e - b), begin, phantom});
      };
      size_t at = 0;
      for (const auto& [b, e] : p.regex->find_all(piece.text)) {
        if (b > at) sub(at, b);
        sub(b, e);
        at = e;
      }
      if (at < piece.text.size()) sub(at, piece.text.size());
    }
    if (p.kind == PreTokenizer::Kind::kByteLevel) {
      for (auto& piece : next) {
        std::string mapped;
        for (const unsigned char c : piece.text)
          mapped += table.to_char[c];
        piece.text = std::move(mapped);
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

std::vector<int64_t> HfTokenizer::Impl::bpe(const std::string& word) const {
  if (ignore_merges) {
    if (const auto it = vocab.find(word); it != vocab.end()) return {it->second};
  }
  {
    const std::lock_guard<std::mutex> lock(cache_mutex);
    if (const auto it = cache.find(word); it != cache.end()) return it->second;
  }
  // One symbol per character, then the lowest-ranked adjacent pair merged until none is left
  // (ties: the leftmost), as Hugging Face's BPE does.
  std::vector<int64_t> symbols;
  for (size_t i = 0; i < word.size();) {
    const size_t n = std::min(utf8_length(static_cast<unsigned char>(word[i])), word.size() - i);
    const auto it = vocab.find(word.substr(i, n));
    if (it != vocab.end()) {
      symbols.push_back(it->second);
    } else if (byte_fallback && std::all_of(word.begin() + static_cast<std::ptrdiff_t>(i),
                                            word.begin() + static_cast<std::ptrdiff_t>(i + n),
                                            [&](char c) { return byte_ids[uint8_t(c)] >= 0; })) {
      for (size_t k = i; k < i + n; ++k)
        symbols.push_back(byte_ids[static_cast<uint8_t>(word[k])]);
    } else if (unk_id >= 0) {
      if (!(fuse_unk && !symbols.empty() && symbols.back() == unk_id)) symbols.push_back(unk_id);
    } else {
      throw UserError(source + ": the character '" + word.substr(i, n) + "' has no piece");
    }
    i += n;
  }
  // The lowest-ranked adjacent pair is merged until none is left (ties: the leftmost), as
  // Hugging Face's BPE does: a heap of candidate merges over a linked list of symbols, stale
  // entries skipped, so a long word (a whole SentencePiece-style chunk) costs n log n.
  struct Candidate {
    int32_t rank;
    size_t left, right;
    int64_t left_id, right_id, merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const size_t none = symbols.size();
  std::vector<size_t> prev(symbols.size()), next(symbols.size());
  for (size_t i = 0; i < symbols.size(); ++i) {
    prev[i] = i == 0 ? none : i - 1;
    next[i] = i + 1;
  }
  const auto consider = [&](size_t left) {
    if (left == none || next[left] >= none) return;
    const size_t right = next[left];
    const auto it = merges.find(pair_key(symbols[left], symbols[right]));
    if (it != merges.end())
      heap.push({it->second.first, left, right, symbols[left], symbols[right], it->second.second});
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    consider(i);
  std::vector<bool> alive(symbols.size(), true);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (!alive[c.left] || !alive[c.right] || next[c.left] != c.right ||
        symbols[c.left] != c.left_id || symbols[c.right] != c.right_id)
      continue;
    symbols[c.left] = c.merged;
    alive[c.right] = false;
    next[c.left] = next[c.right];
    if (next[c.right] < none) prev[next[c.right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  std::vector<int64_t> merged_symbols;
  for (size_t i = 0; i < symbols.size(); ++i)
    if (alive[i]) merged_symbols.push_back(symbols[i]);
  symbols = std::move(merged_symbols);
  // Words of ordinary length only: a SentencePiece-style chunk is a whole line of text.
  const std::lock_guard<std::mutex> lock(cache_mutex);
  if (cache.size() < (1u << 20) && word.size() <= 256) cache.emplace(word, symbols);
  return symbols;
}

std::vector<std::pair<size_t, size_t>> HfTokenizer::Impl::alignment(
    const std::string& chunk, const std::string& normalized) const {
  // Cut the input where every normalizer has a boundary (no character before it combines with
  // one after it), normalize each part alone: the parts' results concatenate to the whole's.
  std::vector<std::pair<size_t, size_t>> marks = {{0, 0}};
  std::string joined;
  size_t part_begin = 0;
  const auto close = [&](size_t part_end) {
    joined += normalize(chunk.substr(part_begin, part_end - part_begin));
    marks.emplace_back(joined.size(), part_end);
    part_begin = part_end;
  };
  const auto length = static_cast<int32_t>(chunk.size());
  for (int32_t i = 0; i < length;) {
    const int32_t start = i;
    UChar32 c = 0;
    U8_NEXT(chunk.data(), i, length, c);
    const bool boundary =
        c >= 0 && std::all_of(normalizers.begin(), normalizers.end(),
                              [&](const auto* n) { return n->hasBoundaryBefore(c) != 0; });
    if (start > 0 && boundary) close(static_cast<size_t>(start));
  }
  close(chunk.size());
  if (joined != normalized) return {{0, 0}, {normalized.size(), chunk.size()}};
  return marks;
}

void HfTokenizer::Impl::encode_plain(const std::string& text, size_t begin, size_t end,
                                     Encoding* out, bool with_spans) const {
  if (begin == end) return;
  const std::string chunk = text.substr(begin, end - begin);
  const std::string normalized = normalize(chunk);
  // Offsets in the normalized chunk map to the input through the alignment's marks: exactly
  // where normalization left the text alone (NFC of NFC text, the usual case), else to the
  // enclosing run of characters normalized together (a decomposed é and its accent).
  const bool identity = normalized == chunk;
  std::vector<std::pair<size_t, size_t>> marks;
  if (with_spans && !identity && spans_exact) marks = alignment(chunk, normalized);
  const auto to_input = [&](size_t pos, bool is_end) -> size_t {
    if (!spans_exact) return is_end ? chunk.size() : 0;
    if (identity) return pos;
    const auto by_normalized = [](const std::pair<size_t, size_t>& m, size_t p) {
      return m.first < p;
    };
    auto it = std::lower_bound(marks.begin(), marks.end(), pos, by_normalized);
    if (!is_end && (it == marks.end() || it->first > pos)) --it;
    return it == marks.end() ? chunk.size() : it->second;
  };
  for (const auto& piece : pre_tokenize(normalized, begin == 0)) {
    if (piece.text.empty()) continue;
    const auto ids = bpe(piece.text);
    out->ids.insert(out->ids.end(), ids.begin(), ids.end());
    if (!with_spans) continue;
    size_t at = 0;  // in the piece's bytes, phantom ones included
    for (const int64_t id : ids) {
      const size_t next = at + token_bytes[static_cast<size_t>(id)];
      const auto normalized_at = [&](size_t pos) {
        return piece.begin + (pos > piece.phantom ? pos - piece.phantom : 0);
      };
      const size_t b = begin + to_input(normalized_at(at), false);
      const size_t e = begin + to_input(normalized_at(next), true);
      out->spans.emplace_back(std::min(b, end), std::min(std::max(b, e), end));
      at = next;
    }
  }
}

void HfTokenizer::Impl::encode(const std::string& text, bool add_special_tokens, Encoding* out,
                               bool with_spans) const {
  const auto specials = [&](const std::vector<int64_t>& ids, size_t at) {
    out->ids.insert(out->ids.end(), ids.begin(), ids.end());
    if (with_spans) out->spans.insert(out->spans.end(), ids.size(), std::make_pair(at, at));
  };
  if (add_special_tokens) specials(prefix_ids, 0);
  // Added tokens are found in the raw text first (leftmost, then longest); the text between
  // them goes through normalization, pre-tokenization and BPE.
  size_t plain_start = 0, i = 0;
  while (i < text.size()) {
    const AddedToken* found = nullptr;
    for (const size_t k : added_by_first_byte[static_cast<unsigned char>(text[i])]) {
      const AddedToken& a = added[k];
      if (text.compare(i, a.content.size(), a.content) == 0) {
        found = &a;
        break;
      }
    }
    if (found == nullptr) {
      ++i;
      continue;
    }
    size_t begin = i, end = i + found->content.size();
    if (found->lstrip) {
      while (begin > plain_start && std::isspace(static_cast<unsigned char>(text[begin - 1])))
        --begin;
    }
    if (found->rstrip) {
      while (end < text.size() && std::isspace(static_cast<unsigned char>(text[end])))
        ++end;
    }
    encode_plain(text, plain_start, begin, out, with_spans);
    out->ids.push_back(found->id);
    if (with_spans) out->spans.emplace_back(begin, end);
    plain_start = i = end;
  }
  encode_plain(text, plain_start, text.size(), out, with_spans);
  if (add_special_tokens) specials(suffix_ids, text.size());
}

std::vector<int64_t> HfTokenizer::encode(const std::string& text, bool add_special_tokens) const {
  Encoding out;
  impl_->encode(text, add_special_tokens, &out, /*with_spans=*/false);
  return std::move(out.ids);
}

Encoding HfTokenizer::encode_with_spans(const std::string& text) const {
  Encoding out;
  impl_->encode(text, /*add_special_tokens=*/false, &out, /*with_spans=*/true);
  return out;
}

std::string HfTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const Impl& t = *impl_;
  if (!t.byte_level_decoder) {
    // Every token's string, added tokens included, through the decoder chain, as Hugging
    // Face's decode does.
    std::vector<std::string> tokens;
    for (const int64_t id : ids) {
      if (skip_special_tokens && is_special(id)) continue;
      std::string token = id_to_token(id);
      if (!token.empty()) tokens.push_back(std::move(token));
    }
    // Without a decoder Hugging Face joins the tokens with spaces.
    const std::string separator = t.decoder.empty() ? " " : "";
    std::string out;
    for (const auto& piece : apply_hf_decoder(t.decoder, std::move(tokens)))
      out += (out.empty() ? "" : separator) + piece;
    return out;
  }
  const auto& table = byte_table();
  std::string out, bytes;  // bytes: the current run of byte-level pieces
  const auto flush = [&] {
    out += lossy_utf8(bytes);
    bytes.clear();
  };
  for (const int64_t id : ids) {
    if (const auto it = t.added_by_id.find(id); it != t.added_by_id.end()) {
      const AddedToken& a = t.added[it->second];
      if (a.special && skip_special_tokens) continue;
      flush();
      out += a.content;
      continue;
    }
    if (id < 0 || static_cast<size_t>(id) >= t.id_to_token.size() ||
        t.id_to_token[static_cast<size_t>(id)].empty())
      continue;  // not a token of this vocabulary: nothing to write
    const std::string& piece = t.id_to_token[static_cast<size_t>(id)];
    for (size_t i = 0; i < piece.size();) {
      const size_t n =
          std::min(utf8_length(static_cast<unsigned char>(piece[i])), piece.size() - i);
      uint32_t cp = static_cast<unsigned char>(piece[i]);
      if (n == 2) cp = ((cp & 0x1F) << 6) | (static_cast<unsigned char>(piece[i + 1]) & 0x3F);
      if (n == 3) {
        cp = ((cp & 0x0F) << 12) | ((static_cast<unsigned char>(piece[i + 1]) & 0x3F) << 6) |
             (static_cast<unsigned char>(piece[i + 2]) & 0x3F);
      }
      const auto b = table.to_byte.find(cp);
      if (b != table.to_byte.end()) {
        bytes += static_cast<char>(b->second);
      } else {
        bytes.append(piece, i, n);
      }
      i += n;
    }
  }
  flush();
  return out;
}

int64_t HfTokenizer::vocab_size() const {
  return static_cast<int64_t>(impl_->id_to_token.size());
}

bool HfTokenizer::is_special(int64_t id) const {
  const auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

std::string HfTokenizer::id_to_token(int64_t id) const {
  if (const auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end())
    return impl_->added[it->second].content;
  if (id < 0 || static_cast<size_t>(id) >= impl_->id_to_token.size()) return "";
  return impl_->id_to_token[static_cast<size_t>(id)];
}

const std::vector<int64_t>& HfTokenizer::prefix_ids() const {
  return impl_->prefix_ids;
}

int64_t HfTokenizer::token_to_id(const std::string& token) const {
  for (const auto& a : impl_->added)
    if (a.content == token) return a.id;
  const auto it = impl_->vocab.find(token);
  return it == impl_->vocab.end() ? -1 : it->second;
}

}  // namespace flywheel
