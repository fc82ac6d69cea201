#include "trainer/checkpoint/hf_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include <unistd.h>

#include "trainer/checkpoint/safetensors.h"
#include "trainer/core/error.h"
#include "trainer/model/parameter_storage.h"

namespace flywheel {
namespace fs = std::filesystem;

namespace {

bool is_ignorable(const std::string& name, const ModelConfig& config) {
  // Older transformers versions saved the rotary inverse frequencies as a buffer.
  static const std::string kInvFreq = "rotary_emb.inv_freq";
  if (name.size() >= kInvFreq.size() &&
      name.compare(name.size() - kInvFreq.size(), kInvFreq.size(), kInvFreq) == 0) {
    return true;
  }
  // Some tied checkpoints still carry a copy of the embedding as the head.
  return config.tie_word_embeddings && name == "lm_head.weight";
}

std::string shape_str(c10::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) throw UserError("cannot write " + tmp);
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() &&
                    std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
    std::fclose(f);
    if (!ok) throw UserError("failed writing " + tmp);
  }
  fs::rename(tmp, path);
}

std::vector<std::pair<std::string, torch::Tensor>> named_parameters(
    const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    out.emplace_back(item.key(), item.value());
  }
  return out;
}

void check_parameters(const torch::nn::Module& module,
                      const std::map<std::string, torch::Tensor>& tensors,
                      const ModelConfig& config, const std::string& where) {
  std::set<std::string> used;
  for (const auto& [name, param] : named_parameters(module)) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      throw UserError(where + ": missing tensor '" + name + "' (expected shape " +
                      shape_str(param.sizes()) + ")");
    }
    if (it->second.sizes() != param.sizes()) {
      throw UserError(where + ": tensor '" + name + "' has shape " + shape_str(it->second.sizes()) +
                      ", expected " + shape_str(param.sizes()));
    }
    used.insert(name);
  }
  for (const auto& [name, tensor] : tensors) {
    if (!used.count(name) && !is_ignorable(name, config)) {
      throw UserError(where + ": unexpected tensor '" + name + "' with shape " +
                      shape_str(tensor.sizes()) + " (not a parameter of " + config.architecture +
                      ")");
    }
  }
}

void load_parameters(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                     const ModelConfig& config, const std::string& where) {
  check_parameters(module, tensors, config, where);
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : named_parameters(module))
    param.copy_(tensors.at(name));
}

LlamaForCausalLM load_causal_lm(const std::string& dir, const LoadOptions& options) {
  auto config = load_model_config((fs::path(dir) / "config.json").string());
  if (config.is_sequence_classification()) {
    throw UserError(dir + ": " + config.architecture + " is a reward/classification model, " +
                    "expected a causal LM");
  }
  if (options.dtype) config.dtype = *options.dtype;
  config.device = options.device;
  if (options.deferred) {
    const DeferredParameters deferred;
    LlamaForCausalLM model(config);
    check_parameters(*model, load_safetensors_dir(dir), config, dir);
    model->eval();
    return model;
  }
  LlamaForCausalLM model(config);  // allocated in place, filled by the load
  load_parameters(*model, load_safetensors_dir(dir), config, dir);
  model->eval();
  return model;
}

void save_pretrained(const std::string& dir, const torch::nn::Module& module,
                     const ModelConfig& config, uint64_t max_shard_bytes,
                     const BeforeWrite& before) {
  fs::create_directories(dir);
  const auto params = named_parameters(module);
  std::vector<std::pair<std::string, torch::Tensor>> placeholders;
  const auto meta = torch::TensorOptions().dtype(config.dtype).device(torch::kMeta);
  for (const auto& [name, p] : params)
    placeholders.emplace_back(name, torch::empty(p.sizes(), meta));
  save_safetensors_dir(dir, placeholders, max_shard_bytes, [&](size_t i) {
    const auto& p = params[i].second;
    if (before) before(p);
    return p.detach().to(torch::kCPU, config.dtype);
  });
  write_file_atomic((fs::path(dir) / "config.json").string(),
                    model_config_to_json(config).dump(2) + "\n");
}

void copy_tokenizer_files(const std::string& from, const std::string& to,
                          const std::string& trained_template) {
  const fs::path config_path = fs::path(from) / "tokenizer_config.json";
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(config_path)) {
    std::ifstream in(config_path);
    config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!config.is_object()) throw UserError(config_path.string() + ": not a JSON object");
  }
  const bool has_own = fs::exists(fs::path(from) / "chat_template.jinja") ||
                       (config.contains("chat_template") && !config["chat_template"].is_null());
  // The model keeps its own template only when it was trained on it; otherwise the template it
  // was trained on is recorded instead, so `auto` on the result renders what it learned (and a
  // Hugging Face user sees no template rather than a wrong one).
  const bool keep_own = trained_template == "auto" && has_own;
  for (const char* name : {"tokenizer.model", "tokenizer.json", "special_tokens_map.json",
                           "chat_template.jinja", "generation_config.json"}) {
    const fs::path src = fs::path(from) / name;
    if (!fs::exists(src) || (!keep_own && std::string(name) == "chat_template.jinja")) continue;
    fs::copy_file(src, fs::path(to) / name, fs::copy_options::overwrite_existing);
  }
  if (!keep_own) {
    config.erase("chat_template");
    // `auto` without an own template rendered the recorded built-in, else tulu.
    if (trained_template != "auto" || !config.contains("flywheel_chat_template"))
      config["flywheel_chat_template"] = trained_template == "auto" ? "tulu" : trained_template;
  }
  if (keep_own && !fs::exists(config_path)) return;
  write_file_atomic((fs::path(to) / "tokenizer_config.json").string(), config.dump(2) + "\n");
}

LlamaForSequenceClassification load_reward_model(const std::string& dir, torch::Dtype dtype,
                                                 const torch::Device& device, double init_std,
                                                 uint64_t seed) {
  auto config = load_model_config((std::filesystem::path(dir) / "config.json").string());
  const bool from_causal = !config.is_sequence_classification();
  if (from_causal) config = reward_config_from(config);
  config.dtype = dtype;
  config.device = device;
  LlamaForSequenceClassification rm(config);
  auto tensors = load_safetensors_dir(dir);
  if (from_causal) {
    tensors.erase("lm_head.weight");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    tensors["score.weight"] =
        at::normal(0.0, init_std, {config.num_labels, config.hidden_size}, gen);
  }
  load_parameters(*rm, tensors, config, dir);
  return rm;
}

}  // namespace flywheel
