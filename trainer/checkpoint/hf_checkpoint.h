// Hugging Face model directories: config.json + safetensors (single file or sharded).
//
// Loading is strict: every parameter of the module must be in the checkpoint with the same
// shape, and every checkpoint tensor must belong to a parameter (except `lm_head.weight` when
// embeddings are tied and the legacy `rotary_emb.inv_freq` buffers). Violations are UserErrors
// that name the tensor.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trainer/model/llama.h"
#include "trainer/model/model_config.h"
#include "trainer/model/reward_model.h"

namespace flywheel {

struct LoadOptions {
  std::optional<torch::Dtype> dtype;  // default: config.json's torch_dtype
  torch::Device device = torch::kCPU;
  // Build the model under DeferredParameters (trainer/model/parameter_storage.h) and only check
  // the checkpoint against it: ZeRO-3 then loads each rank's parts (ParameterShards::load).
  bool deferred = false;
};

// Reads `dir/config.json` and the weights into a new causal LM in eval mode.
LlamaForCausalLM load_causal_lm(const std::string& dir, const LoadOptions& options = {});

// Loads a reward model from `dir`. A *ForSequenceClassification checkpoint is loaded as is;
// a causal LM checkpoint (the usual start: an SFT model) provides the decoder, its lm_head is
// dropped and the score head is initialised normal(0, init_std) from `seed`.
LlamaForSequenceClassification load_reward_model(const std::string& dir, torch::Dtype dtype,
                                                 const torch::Device& device, double init_std,
                                                 uint64_t seed);

// Checks that `tensors` fit the parameters of `module` (every parameter present with its shape,
// nothing unexpected) without reading any data. `where` names the checkpoint in error messages.
void check_parameters(const torch::nn::Module& module,
                      const std::map<std::string, torch::Tensor>& tensors,
                      const ModelConfig& config, const std::string& where);

// check_parameters, then copies `tensors` into the parameters of `module` (converting dtype,
// keeping device).
void load_parameters(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                     const ModelConfig& config, const std::string& where);

// Parameters in registration order, with Hugging Face names.
std::vector<std::pair<std::string, torch::Tensor>> named_parameters(
    const torch::nn::Module& module);

// Called with each parameter, in named_parameters() order, just before its data is read for
// writing: a model whose parameters are sharded (ZeRO-3) gathers the parameter's unit there.
using BeforeWrite = std::function<void(const torch::Tensor& param)>;

// Hugging Face's default largest safetensors file of a model.
constexpr uint64_t kMaxShardBytes = 5'000'000'000ULL;

// Writes config.json and the parameters (as config.dtype) into `dir`, sharding above
// max_shard_bytes. The result loads in transformers' from_pretrained unchanged. Each parameter
// is copied to the host (and converted) as it is written, so only one is held twice at a time.
void save_pretrained(const std::string& dir, const torch::nn::Module& module,
                     const ModelConfig& config, uint64_t max_shard_bytes = kMaxShardBytes,
                     const BeforeWrite& before = {});

// Copies the tokenizer files a model directory needs to be used on its own (generation, the
// next training stage) from directory `from` to `to`: those of them that exist, the chat
// template and generation_config.json (the stop ids) included. trained_template is the
// data.chat_template the model was trained with: unless it is the model's own ("auto" with a
// template), the copy drops the own template and names the built-in in tokenizer_config.json
// ("flywheel_chat_template"), which `auto` then renders.
void copy_tokenizer_files(const std::string& from, const std::string& to,
                          const std::string& trained_template);

// Writes `text` to `path` atomically (temporary file + rename).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace flywheel
