#include "trainer/text/tokenizer.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "trainer/core/error.h"
#include "trainer/text/jinja/template.h"
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

// config.json / generation_config.json's eos_token_id: an id or a non-empty list of ids; none
// when absent or null.
std::vector<int64_t> config_ids(const json& config, const std::string& key, int64_t vocab_size,
                                const std::string& path) {
  if (!config.contains(key) || config.at(key).is_null()) return {};
  const json& v = config.at(key);
  if (!v.is_number_integer() && !(v.is_array() && !v.empty())) {
    bad_key(path, key, "an integer or a non-empty list of integers", v);
  }
  std::vector<int64_t> ids;
  for (const json& id : v.is_array() ? v : json::array({v})) {
    if (!id.is_number_integer()) bad_key(path, key, "a list of integers", v);
    require_in_vocab(id.get<int64_t>(), vocab_size, path + ": key '" + key + "'");
    ids.push_back(id.get<int64_t>());
  }
  return ids;
}

// tokenizer_config.json's chat_template: a string, or named templates [{name, template}] of
// which "default" is the one used without a name.
std::string config_chat_template(const json& config, const std::string& path) {
  if (!config.contains("chat_template") || config.at("chat_template").is_null()) return "";
  const json& v = config.at("chat_template");
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    for (const json& named : v) {
      if (named.is_object() && named.value("name", "") == "default" && named.contains("template") &&
          named.at("template").is_string())
        return named.at("template").get<std::string>();
    }
  }
  bad_key(path, "chat_template", "a string or a list holding {\"name\": \"default\", \"template\"}",
          v);
}

}  // namespace

struct Tokenizer::CompiledTemplate {
  std::once_flag once;
  std::shared_ptr<const jinja::Template> parsed;
};

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

Tokenizer Tokenizer::from_file(const std::string& model_path) {
  if (!std::filesystem::is_regular_file(model_path)) {
    throw UserError("tokenizer model not found: " + model_path);
  }
  Tokenizer tok;
  if (std::filesystem::path(model_path).extension() == ".json") {
    tok.hf_.emplace(HfTokenizer::from_file(model_path));
    // tokenizer.json names no eos; its post-processor's single prefix token is the bos.
    if (tok.hf_->prefix_ids().size() == 1) tok.set_bos(tok.hf_->prefix_ids()[0]);
    return tok;
  }
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
  const std::string json_path = dir + "/tokenizer.json", model_path = dir + "/tokenizer.model";
  if (!std::filesystem::exists(json_path) && !std::filesystem::exists(model_path)) {
    throw UserError(dir + ": no tokenizer (expected " + json_path + " or " + model_path + ")");
  }
  // tokenizer.json first, as Hugging Face does; a tokenizer.json of a kind this build does not
  // read (older SentencePiece-style files: Prepend / Replace normalizers) beside a
  // tokenizer.model is the same tokenizer, so the model file serves.
  std::optional<Tokenizer> loaded;
  if (std::filesystem::exists(json_path)) {
    try {
      loaded.emplace(from_file(json_path));
    } catch (const UserError&) {
      if (!std::filesystem::exists(model_path)) throw;
    }
  }
  if (!loaded) loaded.emplace(from_file(model_path));
  Tokenizer tok = std::move(*loaded);
  const std::string tokenizer_config = dir + "/tokenizer_config.json";
  if (std::filesystem::exists(tokenizer_config)) {
    const json config = read_json(tokenizer_config);
    // Resolve every key before applying any, so an error leaves nothing half-applied.
    auto piece_id = [&](const char* key) -> std::optional<int64_t> {
      const auto piece = config_token(config, key, tokenizer_config);
      if (!piece) return std::nullopt;
      const int64_t id = tok.piece_to_id(*piece);
      if (id < 0) {
        throw UserError(tokenizer_config + ": key '" + key + "': \"" + *piece +
                        "\" is not a token of the " + tok.backend() + " tokenizer in " + dir);
      }
      return id;
    };
    const auto bos = piece_id("bos_token"), eos = piece_id("eos_token"),
               pad = piece_id("pad_token");
    tok.chat_template_ = config_chat_template(config, tokenizer_config);
    if (config.contains("flywheel_chat_template")) {
      if (!config["flywheel_chat_template"].is_string())
        bad_key(tokenizer_config, "flywheel_chat_template", "a template name",
                config["flywheel_chat_template"]);
      tok.trained_template_ = config["flywheel_chat_template"].get<std::string>();
    }
    tok.chat_template_source_ = tokenizer_config + ": key 'chat_template'";
    if (bos) tok.set_bos(*bos);
    if (eos) tok.set_eos(*eos);
    if (pad) tok.set_pad(*pad);
  }
  if (const std::string jinja = dir + "/chat_template.jinja"; std::filesystem::exists(jinja)) {
    std::ifstream in(jinja);
    tok.chat_template_.assign(std::istreambuf_iterator<char>(in), {});
    if (!in.good() && !in.eof()) throw UserError(jinja + ": cannot read");
    if (tok.chat_template_.empty()) throw UserError(jinja + ": the chat template is empty");
    tok.chat_template_source_ = jinja;
  }
  tok.compiled_ = std::make_shared<CompiledTemplate>();
  // generation_config.json's eos ids win over config.json's, as in transformers' generate().
  for (const char* name : {"config.json", "generation_config.json"}) {
    const std::string path = dir + "/" + name;
    if (!std::filesystem::exists(path)) continue;
    const json config = read_json(path);
    const int64_t vocab = tok.vocab_size();
    if (auto eos = config_ids(config, "eos_token_id", vocab, path); !eos.empty()) {
      tok.generation_eos_ = std::move(eos);
    }
  }
  return tok;
}

std::vector<int64_t> Tokenizer::encode_with_special_tokens(const std::string& text) const {
  if (hf_) return hf_->encode(text, /*add_special_tokens=*/true);
  return encode(text, /*add_bos=*/bos_id_ >= 0);
}

std::shared_ptr<const jinja::Template> Tokenizer::compiled_chat_template() const {
  if (chat_template_.empty()) return nullptr;
  std::call_once(compiled_->once, [&] {
    compiled_->parsed =
        std::make_shared<const jinja::Template>(chat_template_, chat_template_source_);
  });
  return compiled_->parsed;
}

std::vector<int64_t> Tokenizer::stop_ids() const {
  std::vector<int64_t> ids = generation_eos_;
  if (ids.empty() && eos_id_ >= 0) ids.push_back(eos_id_);
  return ids;
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int64_t> ids;
  if (add_bos) {
    if (bos_id_ < 0) throw UserError("add_bos: this tokenizer model defines no bos token");
    ids.push_back(bos_id_);
  }
  const auto plain = hf_ ? hf_->encode(text, false) : encode_with_spans(text).ids;
  ids.insert(ids.end(), plain.begin(), plain.end());
  return ids;
}

Encoding Tokenizer::encode_with_spans(const std::string& text) const {
  if (hf_) return hf_->encode_with_spans(text);
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

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool keep_special) const {
  std::vector<int64_t> kept;
  kept.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0) throw UserError("decode: token id " + std::to_string(id) + " is negative");
    // Ids past the tokenizer's vocabulary have no text (a model's embedding rows often
    // outnumber its tokens, as Qwen's do): skipped, as Hugging Face's decode skips them.
    if (id >= vocab_size()) continue;
    if (keep_special || !is_special(id)) kept.push_back(id);
  }
  if (hf_) return hf_->decode(kept, /*skip_special_tokens=*/false);
  return sp_->decode(std::vector<int>(kept.begin(), kept.end()));
}

bool Tokenizer::is_special(int64_t id) const {
  if (id == bos_id_ || id == eos_id_ || id == pad_id_) return true;
  return hf_ ? hf_->is_special(id) : sp_->is_control(static_cast<int>(id));
}

std::string Tokenizer::id_to_piece(int64_t id) const {
  require_in_vocab(id, vocab_size(), "id_to_piece");
  return hf_ ? hf_->id_to_token(id) : sp_->id_to_piece(static_cast<int>(id));
}

int64_t Tokenizer::piece_to_id(const std::string& piece) const {
  if (hf_) return hf_->token_to_id(piece);
  const int id = sp_->piece_to_id(piece);
  return id == sp_->unk_id() && piece != sp_->id_to_piece(id) ? -1 : id;
}

int64_t Tokenizer::vocab_size() const {
  return hf_ ? hf_->vocab_size() : sp_->piece_size();
}

void Tokenizer::set_special(int64_t id, int64_t* slot, std::string* token, const char* what) {
  require_in_vocab(id, vocab_size(), what);
  *slot = id;
  if (token != nullptr) *token = id_to_piece(id);
  if (sp_) specials_ = special_literals(*sp_, {bos_id_, eos_id_, pad_id_});
}

void Tokenizer::set_bos(int64_t id) {
  set_special(id, &bos_id_, &bos_token_, "bos");
}

void Tokenizer::set_eos(int64_t id) {
  set_special(id, &eos_id_, &eos_token_, "eos");
}

void Tokenizer::set_pad(int64_t id) {
  set_special(id, &pad_id_, nullptr, "pad");
}

}  // namespace flywheel
