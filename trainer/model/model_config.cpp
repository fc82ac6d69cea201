#include "trainer/model/model_config.h"

#include <fstream>
#include <set>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

using nlohmann::json;

// Reads config keys with type and range checks, remembering which keys were consumed so the
// rest can be preserved in ModelConfig::extra.
class KeyReader {
 public:
  KeyReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  bool has(const char* key) {
    consumed_.insert(key);
    return j_.contains(key) && !j_.at(key).is_null();
  }

  int64_t integer(const char* key, std::optional<int64_t> fallback, int64_t min_value) {
    if (!has(key)) return require(key, fallback, "an integer");
    const auto& v = j_.at(key);
    if (!v.is_number_integer()) fail(key, "an integer", v);
    const auto x = v.get<int64_t>();
    if (x < min_value) fail(key, "an integer >= " + std::to_string(min_value), v);
    return x;
  }

  double number(const char* key, std::optional<double> fallback, bool positive) {
    if (!has(key)) return require(key, fallback, "a number");
    const auto& v = j_.at(key);
    if (!v.is_number()) fail(key, "a number", v);
    const auto x = v.get<double>();
    if (positive && !(x > 0)) fail(key, "a positive number", v);
    return x;
  }

  bool boolean(const char* key, bool fallback) {
    if (!has(key)) return fallback;
    const auto& v = j_.at(key);
    if (!v.is_boolean()) fail(key, "true or false", v);
    return v.get<bool>();
  }

  std::string string(const char* key, std::optional<std::string> fallback) {
    if (!has(key)) return require(key, fallback, "a string");
    const auto& v = j_.at(key);
    if (!v.is_string()) fail(key, "a string", v);
    return v.get<std::string>();
  }

  const json& raw(const char* key) {
    consumed_.insert(key);
    return j_.at(key);
  }

  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const json& got) const {
    throw UserError(where_ + ": key '" + key + "': expected " + expected + ", got " + got.dump());
  }

  json leftovers() const {
    json out = json::object();
    for (const auto& [k, v] : j_.items()) {
      if (!consumed_.count(k)) out[k] = v;
    }
    return out;
  }

  const std::string& where() const { return where_; }

 private:
  template <typename T>
  T require(const char* key, const std::optional<T>& fallback, const std::string& what) const {
    if (!fallback) throw UserError(where_ + ": missing required key '" + key + "' (" + what + ")");
    return *fallback;
  }

  const json& j_;
  std::string where_;
  std::set<std::string> consumed_;
};

RopeScaling parse_rope_scaling(const json& j, const std::string& where) {
  const std::string w = where + ": rope_scaling";
  if (!j.is_object()) throw UserError(w + ": expected an object or null, got " + j.dump());
  KeyReader r(j, w);
  // transformers writes "rope_type"; older configs use "type".
  std::string type = r.has("rope_type") ? r.string("rope_type", std::nullopt)
                                        : r.string("type", std::string("default"));
  RopeScaling s;
  if (type == "default") return s;
  if (type == "linear") {
    s.type = type;
    s.factor = r.number("factor", std::nullopt, /*positive=*/true);
    return s;
  }
  if (type == "llama3") {
    s.type = type;
    s.factor = r.number("factor", std::nullopt, true);
    s.low_freq_factor = r.number("low_freq_factor", std::nullopt, true);
    s.high_freq_factor = r.number("high_freq_factor", std::nullopt, true);
    s.original_max_position_embeddings =
        r.integer("original_max_position_embeddings", std::nullopt, 1);
    if (!(s.high_freq_factor > s.low_freq_factor)) {
      throw UserError(w + ": high_freq_factor must be greater than low_freq_factor");
    }
    return s;
  }
  throw UserError(w + ": unsupported rope type '" + type +
                  "' (supported: default, linear, llama3)");
}

json rope_scaling_to_json(const RopeScaling& s) {
  if (s.type.empty()) return nullptr;
  json j = {{"rope_type", s.type}, {"factor", s.factor}};
  if (s.type == "llama3") {
    j["low_freq_factor"] = s.low_freq_factor;
    j["high_freq_factor"] = s.high_freq_factor;
    j["original_max_position_embeddings"] = s.original_max_position_embeddings;
  }
  return j;
}

}  // namespace

torch::Dtype parse_dtype(const std::string& name, const std::string& where) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  throw UserError(where + ": unsupported dtype '" + name +
                  "' (expected float32, bfloat16 or float16)");
}

std::string dtype_name(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return "float32";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat16:
      return "float16";
    default:
      return std::string(c10::toString(dtype));
  }
}

bool ModelConfig::is_sequence_classification() const {
  return architecture.find("ForSequenceClassification") != std::string::npos;
}

void ModelConfig::validate(const std::string& where) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) throw UserError(where + ": " + key + " must be positive, got " + std::to_string(v));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  if (head_dim % 2 != 0) {
    throw UserError(where + ": head_dim must be even for rotary embeddings, got " +
                    std::to_string(head_dim));
  }
  if (num_attention_heads % num_key_value_heads != 0) {
    throw UserError(where + ": num_attention_heads (" + std::to_string(num_attention_heads) +
                    ") must be a multiple of num_key_value_heads (" +
                    std::to_string(num_key_value_heads) + ")");
  }
  if (eos_token_ids.empty()) throw UserError(where + ": eos_token_id must not be empty");
  if (sliding_window && *sliding_window <= 0) {
    throw UserError(where + ": sliding_window must be positive");
  }
}

ModelConfig parse_model_config(const json& j, const std::string& where) {
  if (!j.is_object()) throw UserError(where + ": expected a JSON object");
  KeyReader r(j, where);
  ModelConfig c;

  if (r.has("architectures")) {
    const auto& a = r.raw("architectures");
    if (!a.is_array() || a.size() != 1 || !a[0].is_string()) {
      r.fail("architectures", "a list with one architecture name", a);
    }
    c.architecture = a[0].get<std::string>();
  }
  c.model_type = r.string("model_type", std::string("llama"));
  static const std::set<std::string> kTypes = {"llama", "mistral", "qwen2"};
  if (!kTypes.count(c.model_type)) {
    r.fail("model_type", "one of llama, mistral, qwen2", c.model_type);
  }
  static const std::set<std::string> kSuffixes = {"ForCausalLM", "ForSequenceClassification"};
  const auto prefix = c.model_type == "llama"     ? "Llama"
                      : c.model_type == "mistral" ? "Mistral"
                                                  : "Qwen2";
  bool known_arch = false;
  for (const auto& s : kSuffixes)
    known_arch |= c.architecture == prefix + s;
  if (!known_arch) {
    r.fail("architectures",
           std::string(prefix) + "ForCausalLM or " + prefix +
               "ForSequenceClassification (model_type is " + c.model_type + ")",
           c.architecture);
  }

  const std::string act = r.string("hidden_act", std::string("silu"));
  if (act != "silu") r.fail("hidden_act", "\"silu\"", act);

  c.vocab_size = r.integer("vocab_size", std::nullopt, 1);
  c.hidden_size = r.integer("hidden_size", std::nullopt, 1);
  c.intermediate_size = r.integer("intermediate_size", std::nullopt, 1);
  c.num_hidden_layers = r.integer("num_hidden_layers", std::nullopt, 1);
  c.num_attention_heads = r.integer("num_attention_heads", std::nullopt, 1);
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads, 1);
  c.head_dim = r.integer("head_dim", c.hidden_size / c.num_attention_heads, 1);
  c.max_position_embeddings = r.integer("max_position_embeddings", int64_t{4096}, 1);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6, /*positive=*/true);
  c.rope_theta = r.number("rope_theta", 10000.0, /*positive=*/true);
  if (r.has("rope_scaling")) c.rope_scaling = parse_rope_scaling(r.raw("rope_scaling"), where);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);

  if (c.model_type == "qwen2") {
    // Qwen2 always has q/k/v biases and no output-projection bias.
    c.qkv_bias = true;
    c.o_bias = false;
    const bool use_window = r.boolean("use_sliding_window", false);
    if (r.has("sliding_window")) {
      const auto w = r.integer("sliding_window", std::nullopt, 1);
      if (use_window) c.sliding_window = w;
    }
  } else {
    c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
    if (r.has("sliding_window")) c.sliding_window = r.integer("sliding_window", std::nullopt, 1);
  }
  c.mlp_bias = r.boolean("mlp_bias", false);
  if (r.has("attention_dropout") && r.number("attention_dropout", 0.0, false) != 0.0) {
    r.fail("attention_dropout", "0 (dropout is not supported)", r.raw("attention_dropout"));
  }

  c.bos_token_id = r.integer("bos_token_id", int64_t{1}, 0);
  if (r.has("eos_token_id")) {
    const auto& e = r.raw("eos_token_id");
    c.eos_token_ids.clear();
    if (e.is_number_integer()) {
      c.eos_token_ids.push_back(e.get<int64_t>());
    } else if (e.is_array() && !e.empty()) {
      for (const auto& x : e) {
        if (!x.is_number_integer()) r.fail("eos_token_id", "an integer or a list of integers", e);
        c.eos_token_ids.push_back(x.get<int64_t>());
      }
    } else {
      r.fail("eos_token_id", "an integer or a non-empty list of integers", e);
    }
  }
  if (r.has("pad_token_id")) c.pad_token_id = r.integer("pad_token_id", std::nullopt, 0);
  if (r.has("id2label")) {
    const auto& labels = r.raw("id2label");
    if (!labels.is_object() || labels.empty()) r.fail("id2label", "a non-empty object", labels);
    c.num_labels = static_cast<int64_t>(labels.size());
  }
  c.num_labels = r.integer("num_labels", c.num_labels, 1);
  if (r.has("torch_dtype")) c.dtype = parse_dtype(r.string("torch_dtype", std::nullopt), where);

  c.extra = r.leftovers();
  c.validate(where);
  return c;
}

ModelConfig load_model_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UserError("cannot open " + path);
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw UserError(path + ": not valid JSON");
  return parse_model_config(j, path);
}

json model_config_to_json(const ModelConfig& c) {
  json j = c.extra;
  j["architectures"] = json::array({c.architecture});
  j["model_type"] = c.model_type;
  j["hidden_act"] = "silu";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = rope_scaling_to_json(c.rope_scaling);
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.model_type == "qwen2") {
    j["use_sliding_window"] = c.sliding_window.has_value();
    if (c.sliding_window) j["sliding_window"] = *c.sliding_window;
  } else {
    j["attention_bias"] = c.qkv_bias;
    j["sliding_window"] = c.sliding_window ? json(*c.sliding_window) : json(nullptr);
  }
  j["mlp_bias"] = c.mlp_bias;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] =
      c.eos_token_ids.size() == 1 ? json(c.eos_token_ids[0]) : json(c.eos_token_ids);
  j["pad_token_id"] = c.pad_token_id ? json(*c.pad_token_id) : json(nullptr);
  if (c.is_sequence_classification()) j["num_labels"] = c.num_labels;
  j["torch_dtype"] = dtype_name(c.dtype);
  return j;
}

}  // namespace flywheel
