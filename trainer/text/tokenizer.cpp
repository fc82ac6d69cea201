#include "trainer/text/tokenizer.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "trainer/core/error.h"
#include "trainer/text/sentencepiece_backend.h"

namespace flywheel {
namespace {

using nlohmann::json;
using Specials = std::vector<std::pair<std::string, int64_t>>;

void require_in_vocab(int64_t id, int64_t vocab_size, const std::string& what) {
  if (id < 0 || id >= vocab_size) {
    throw UserError(what + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                    std::to_string(vocab_size) + ")");
  }
}

// The literals encode() splits out: every control piece plus the current bos/eos/pad pieces
// (which config files may point at ordinary pieces). Unknown pieces stay text, like HF's "<unk>"
// in practice. Longest first, so the first literal matching at a position is the longest one.
Specials special_literals(const SentencePieceBackend& sp, const std::vector<int64_t>& extra_ids) {
  std::vector<int64_t> ids = extra_ids;
  for (int id = 0; id < sp.piece_size(); ++id) {
    if (sp.is_control(id)) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  Specials specials;
  for (int64_t id : ids) {
    if (id < 0 || sp.is_unknown(static_cast<int>(id))) continue;
    const std::string piece = sp.id_to_piece(static_cast<int>(id));
    if (!piece.empty()) specials.emplace_back(piece, id);
  }
  std::sort(specials.begin(), specials.end(), [](const auto& a, const auto& b) {
    return a.first.size() != b.first.size() ? a.first.size() > b.first.size() : a.first < b.first;
  });
  return specials;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UserError("cannot read " + path);
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw UserError(path + ": invalid JSON: " + e.what());
  }
}

[[noreturn]] void bad_key(const std::string& path, const std::string& key,
                          const std::string& expected, const json& got) {
  throw UserError(path + ": key '" + key + "': expected " + expected + ", got " + got.dump());
}

// tokenizer_config.json writes a special token as a string or as an AddedToken object
// {"content": ...}; null or absent means "keep the model's own".
std::optional<std::string> config_token(const json& config, const std::string& key,
                                        const std::string& path) {
  if (!config.contains(key) || config.at(key).is_null()) return std::nullopt;
  const json& v = config.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) {
    return v.at("content").get<std::string>();
  }
  bad_key(path, key, "a string, an object with a string \"content\", or null", v);
}

// config.json ids: an integer, or for eos a list whose first entry is the primary eos.
std::optional<int64_t> config_id(const json& config, const std::string& key, bool allow_list,
                                 int64_t vocab_size, const std::string& path) {
  if (!config.contains(key) || config.at(key).is_null()) return std::nullopt;
  const json& v = config.at(key);
  const bool list_ok = allow_list && v.is_array() && !v.empty() && v.at(0).is_number_integer();
  if (!v.is_number_integer() && !list_ok) {
    bad_key(path, key, allow_list ? "an integer or a non-empty list of integers" : "an integer", v);
  }
  const int64_t id = list_ok ? v.at(0).get<int64_t>() : v.get<int64_t>();
  require_in_vocab(id, vocab_size, path + ": key '" + key + "'");
  return id;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& model_path) {
  if (!std::filesystem::is_regular_file(model_path)) {
    throw UserError("tokenizer model not found: " + model_path);
  }
  Tokenizer tok;
  tok.sp_ = load_sentencepiece(model_path);
  tok.bos_id_ = tok.sp_->bos_id();
  tok.eos_id_ = tok.sp_->eos_id();
  tok.pad_id_ = tok.sp_->pad_id();
  if (tok.bos_id_ >= 0) tok.bos_token_ = tok.sp_->id_to_piece(static_cast<int>(tok.bos_id_));
  if (tok.eos_id_ >= 0) tok.eos_token_ = tok.sp_->id_to_piece(static_cast<int>(tok.eos_id_));
  tok.specials_ = special_literals(*tok.sp_, {tok.bos_id_, tok.eos_id_, tok.pad_id_});
  return tok;
}

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  Tokenizer tok = from_file(dir + "/tokenizer.model");
  const std::string tokenizer_config = dir + "/tokenizer_config.json";
  if (std::filesystem::exists(tokenizer_config)) {
    const json config = read_json(tokenizer_config);
    // Resolve every key before applying any, so an error leaves nothing half-applied.
    auto piece_id = [&](const char* key) -> std::optional<int64_t> {
      const auto piece = config_token(config, key, tokenizer_config);
      if (!piece) return std::nullopt;
      const int id = tok.sp_->piece_to_id(*piece);
      if (id == tok.sp_->unk_id() && *piece != tok.sp_->id_to_piece(id)) {
        throw UserError(tokenizer_config + ": key '" + key + "': \"" + *piece +
                        "\" is not a piece of " + dir + "/tokenizer.model");
      }
      return id;
    };
    const auto bos = piece_id("bos_token"), eos = piece_id("eos_token"),
               pad = piece_id("pad_token");
    if (bos) tok.set_bos(*bos);
    if (eos) tok.set_eos(*eos);
    if (pad) tok.set_pad(*pad);
  }
  const std::string model_config = dir + "/config.json";
  if (std::filesystem::exists(model_config)) {
    const json config = read_json(model_config);
    const int64_t vocab = tok.vocab_size();
    const auto bos = config_id(config, "bos_token_id", false, vocab, model_config);
    const auto eos = config_id(config, "eos_token_id", true, vocab, model_config);
    const auto pad = config_id(config, "pad_token_id", false, vocab, model_config);
    if (bos) tok.set_bos(*bos);
    if (eos) tok.set_eos(*eos);
    if (pad) tok.set_pad(*pad);
  }
  return tok;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int64_t> ids;
  if (add_bos) {
    if (bos_id_ < 0) throw UserError("add_bos: this tokenizer model defines no bos token");
    ids.push_back(bos_id_);
  }
  const auto encoding = encode_with_spans(text);
  ids.insert(ids.end(), encoding.ids.begin(), encoding.ids.end());
  return ids;
}

Encoding Tokenizer::encode_with_spans(const std::string& text) const {
  Encoding out;
  // Encodes text[begin, end) on its own, so SentencePiece adds its dummy prefix to every chunk.
  auto encode_chunk = [&](size_t begin, size_t end) {
    if (begin == end) return;
    std::vector<int> ids;
    std::vector<std::pair<size_t, size_t>> spans;
    std::string error;
    if (!sp_->encode(text.substr(begin, end - begin), &ids, &spans, &error)) {
      throw std::runtime_error("SentencePiece encode failed: " + error);
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      out.ids.push_back(ids[i]);
      out.spans.emplace_back(begin + spans[i].first, begin + spans[i].second);
    }
  };
  // Only positions starting with a literal's first byte are compared against the (possibly
  // hundreds of) literals, which keeps plain text at one table lookup per byte.
  std::array<bool, 256> starts_literal{};
  for (const auto& [literal, id] : specials_)
    starts_literal[static_cast<uint8_t>(literal[0])] = true;
  size_t chunk_begin = 0;
  for (size_t pos = 0; pos < text.size();) {
    const Specials::value_type* match = nullptr;
    if (starts_literal[static_cast<uint8_t>(text[pos])]) {
      for (const auto& special : specials_) {
        if (text.compare(pos, special.first.size(), special.first) == 0) {
          match = &special;
          break;
        }
      }
    }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    encode_chunk(chunk_begin, pos);
    out.ids.push_back(match->second);
    out.spans.emplace_back(pos, pos + match->first.size());
    pos += match->first.size();
    chunk_begin = pos;
  }
  encode_chunk(chunk_begin, text.size());
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> kept;
  kept.reserve(ids.size());
  for (int64_t id : ids) {
    require_in_vocab(id, vocab_size(), "decode");
    const bool special =
        id == bos_id_ || id == eos_id_ || id == pad_id_ || sp_->is_control(static_cast<int>(id));
    if (!special) kept.push_back(static_cast<int>(id));
  }
  return sp_->decode(kept);
}

std::string Tokenizer::id_to_piece(int64_t id) const {
  require_in_vocab(id, vocab_size(), "id_to_piece");
  return sp_->id_to_piece(static_cast<int>(id));
}

int64_t Tokenizer::vocab_size() const {
  return sp_->piece_size();
}

void Tokenizer::set_bos(int64_t id) {
  require_in_vocab(id, vocab_size(), "bos");
  bos_id_ = id;
  bos_token_ = sp_->id_to_piece(static_cast<int>(id));
  specials_ = special_literals(*sp_, {bos_id_, eos_id_, pad_id_});
}

void Tokenizer::set_eos(int64_t id) {
  require_in_vocab(id, vocab_size(), "eos");
  eos_id_ = id;
  eos_token_ = sp_->id_to_piece(static_cast<int>(id));
  specials_ = special_literals(*sp_, {bos_id_, eos_id_, pad_id_});
}

void Tokenizer::set_pad(int64_t id) {
  require_in_vocab(id, vocab_size(), "pad");
  pad_id_ = id;
  specials_ = special_literals(*sp_, {bos_id_, eos_id_, pad_id_});
}

}  // namespace flywheel
