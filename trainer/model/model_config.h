// Typed model configuration, read from (and written back to) a Hugging Face `config.json`.
//
// Supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (and the
// matching *ForSequenceClassification heads). Every value is validated where it is parsed; a
// bad value is a UserError naming the file, the key and what was expected. Keys Flywheel does
// not interpret are kept verbatim in `extra` so a saved config round-trips.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flywheel {

// `rope_scaling` of type "llama3" (Llama 3.1+): low frequencies are divided by `factor`,
// high frequencies kept, and the band in between interpolated smoothly.
struct RopeScaling {
  std::string type;  // "" (none) or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";
  std::string model_type = "llama";  // llama | mistral | qwen2
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t head_dim = 128;  // hidden_size / num_attention_heads unless config.json says otherwise
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2: always; Llama: `attention_bias`
  bool o_bias = false;    // Llama `attention_bias` only
  bool mlp_bias = false;
  std::optional<int64_t> sliding_window;  // Mistral / Qwen2 with use_sliding_window
  int64_t bos_token_id = 1;
  std::vector<int64_t> eos_token_ids = {2};  // first is the primary eos
  std::optional<int64_t> pad_token_id;
  int64_t num_labels = 1;                // *ForSequenceClassification
  torch::Dtype dtype = torch::kFloat32;  // torch_dtype: parameters are stored in this dtype
  // Where a model built from this config allocates its parameters (not part of config.json).
  torch::Device device = torch::kCPU;
  nlohmann::json extra = nlohmann::json::object();

  bool is_sequence_classification() const;
  // The dtype and device parameters are allocated with.
  torch::TensorOptions parameter_options() const {
    return torch::TensorOptions().dtype(dtype).device(device);
  }
  // Checks internal consistency (divisibility, positivity); `where` prefixes the message.
  void validate(const std::string& where) const;
};

// Parses `path` (a config.json); UserError on any missing/ill-typed/out-of-range key.
ModelConfig load_model_config(const std::string& path);
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& where);
// The config.json transformers reads for this model (architectures, model_type, ...).
nlohmann::json model_config_to_json(const ModelConfig& config);

// "float32" / "bfloat16" / "float16" <-> torch dtype (UserError for anything else).
torch::Dtype parse_dtype(const std::string& name, const std::string& where);
std::string dtype_name(torch::Dtype dtype);

}  // namespace flywheel
