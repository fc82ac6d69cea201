// The Llama-family decoder (Llama 1/2/3, Mistral, Qwen2) as LibTorch modules. Parameter
// names match Hugging Face's (`model.layers.0.self_attn.q_proj.weight`, `lm_head.weight`), so
// checkpoints map one to one.
//
// Shapes: B = batch, T = new tokens, S = keys attended (cached + new), C = hidden size,
// H = query heads, K = KV heads, D = head dim, V = vocab, F = MLP width.
#pragma once

#include <torch/torch.h>

#include <utility>

#include "trainer/model/kv_cache.h"
#include "trainer/model/model_config.h"
#include "trainer/model/parameter_gather.h"
#include "trainer/tensor/matmul.h"

namespace flywheel {

// Every module allocates its parameters in the config's dtype on its device and leaves them
// uninitialised: a model is either loaded (trainer/checkpoint/hf_checkpoint.h) or given fresh
// weights by init_weights (trainer/model/init.h). No random initialisation is paid for and
// then overwritten, and nothing is built in float32 on the CPU first.

// ---- building blocks ----

// y = x W^T (+ b), like Linear but allocated, not initialised.
class LinearImpl : public torch::nn::Cloneable<LinearImpl> {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias, torch::TensorOptions options)
      : in_(in), out_(out), has_bias_(bias), options_(options) {
    reset();
  }
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x) {
    return linear_cpu(x, weight, bias);  // oneDNN on float32 CPU tensors, torch::linear elsewhere
  }

  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out], or undefined

 private:
  int64_t in_, out_;
  bool has_bias_;
  torch::TensorOptions options_;
};
TORCH_MODULE(Linear);

// Rows of a [V, C] table, like torch::nn::Embedding but allocated, not initialised.
class EmbeddingImpl : public torch::nn::Cloneable<EmbeddingImpl> {
 public:
  EmbeddingImpl(int64_t num, int64_t dim, torch::TensorOptions options)
      : num_(num), dim_(dim), options_(options) {
    reset();
  }
  void reset() override;
  torch::Tensor forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

  torch::Tensor weight;  // [V, C]

 private:
  int64_t num_, dim_;
  torch::TensorOptions options_;
};
TORCH_MODULE(Embedding);

// RMSNorm computed in float32 and cast back, as Hugging Face's LlamaRMSNorm.
class RMSNormImpl : public torch::nn::Cloneable<RMSNormImpl> {
 public:
  RMSNormImpl(int64_t dim, double eps, torch::TensorOptions options)
      : dim_(dim), eps_(eps), options_(options) {
    reset();
  }
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // [..., C] -> [..., C]

  torch::Tensor weight;  // [C]

 private:
  int64_t dim_;
  double eps_;
  torch::TensorOptions options_;
};
TORCH_MODULE(RMSNorm);

// Grouped-query self-attention with rotary embeddings and an optional KV cache.
class AttentionImpl : public torch::nn::Cloneable<AttentionImpl> {
 public:
  explicit AttentionImpl(const ModelConfig& config) : config_(config) { reset(); }
  void reset() override;
  // x [B, T, C]; cos/sin [B, T, D]; mask [B, 1, T, S] bool (true = attend) or undefined for
  // plain causal attention over x alone.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, AttentionCache* cache, int64_t layer);

  Linear q_proj{nullptr};  // C -> H*D
  Linear k_proj{nullptr};  // C -> K*D
  Linear v_proj{nullptr};  // C -> K*D
  Linear o_proj{nullptr};  // H*D -> C

 private:
  ModelConfig config_;
};
TORCH_MODULE(Attention);

// SwiGLU: down(silu(gate(x)) * up(x)).
class MLPImpl : public torch::nn::Cloneable<MLPImpl> {
 public:
  explicit MLPImpl(const ModelConfig& config) : config_(config) { reset(); }
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, C] -> [B, T, C]

  Linear gate_proj{nullptr};  // C -> F
  Linear up_proj{nullptr};    // C -> F
  Linear down_proj{nullptr};  // F -> C

 private:
  ModelConfig config_;
};
TORCH_MODULE(MLP);

class DecoderLayerImpl : public torch::nn::Cloneable<DecoderLayerImpl> {
 public:
  explicit DecoderLayerImpl(const ModelConfig& config) : config_(config) { reset(); }
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, AttentionCache* cache, int64_t layer);

  Attention self_attn{nullptr};
  MLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr};
  RMSNorm post_attention_layernorm{nullptr};

 private:
  ModelConfig config_;
};
TORCH_MODULE(DecoderLayer);

// ---- the decoder ----

// Inputs shared by every forward:
//   input_ids      [B, T] int64
//   position_ids   [B, T] int64, or undefined: derived from attention_mask (cumsum - 1, as
//                  Hugging Face generate does for left padding) or as past..past+T-1
//   attention_mask [B, S] (1 = real token, 0 = padding; S = cached + T), or [B, T, S] bool
//                  for an explicit per-query pattern (e.g. packed sequences), or undefined
//   cache          optional; its length() is the number of cached tokens, advanced by T
//   right_padded   the [B, T] mask marks only padding after each row's tokens (collate's
//                  batches): causal attention alone keeps every real token off it, so no
//                  mask is built and SDPA may take its flash kernel; the padded positions'
//                  outputs are then not padding-isolated and must be ignored. No cache.
struct DecoderInput {
  DecoderInput(torch::Tensor input_ids, torch::Tensor position_ids = {},
               torch::Tensor attention_mask = {}, AttentionCache* cache = nullptr)
      : input_ids(std::move(input_ids)),
        position_ids(std::move(position_ids)),
        attention_mask(std::move(attention_mask)),
        cache(cache) {}

  torch::Tensor input_ids;
  torch::Tensor position_ids;
  torch::Tensor attention_mask;
  AttentionCache* cache = nullptr;
  bool right_padded = false;
};

class LlamaModelImpl : public torch::nn::Cloneable<LlamaModelImpl> {
 public:
  explicit LlamaModelImpl(const ModelConfig& config) : config_(config) { reset(); }
  void reset() override;
  torch::Tensor forward(const DecoderInput& in);  // -> hidden states [B, T, C]

  const ModelConfig& config() const { return config_; }

  // Training only: keep just each decoder layer's input and recompute the layer in backward
  // (trainer/model/activation_checkpoint.h), trading a second forward for the activations.
  bool activation_checkpointing = false;
  // Set while the parameters are sharded (ZeRO-3): the forward fetches each part before use.
  // Not owned.
  ParameterGather* parameter_gather = nullptr;

  Embedding embed_tokens{nullptr};  // [V, C]
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};

 private:
  ModelConfig config_;
  torch::Tensor inv_freq_;  // [D/2] float32; not a parameter, never cast to the model dtype
};
TORCH_MODULE(LlamaModel);

class LlamaForCausalLMImpl : public torch::nn::Cloneable<LlamaForCausalLMImpl> {
 public:
  explicit LlamaForCausalLMImpl(const ModelConfig& config) : config_(config) { reset(); }
  void reset() override;
  torch::Tensor forward(const DecoderInput& in);  // -> logits [B, T, V]
  // Projects hidden states [B, T, C] to logits [B, T, V] (tied or untied head).
  torch::Tensor logits(const torch::Tensor& hidden);
  // The head's weight [V, C]: lm_head's, or the embedding when tied.
  torch::Tensor head_weight() const;

  const ModelConfig& config() const { return config_; }
  // A KV cache sized for this model.
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  LlamaModel model{nullptr};
  Linear lm_head{nullptr};  // C -> V; null when tie_word_embeddings

 private:
  ModelConfig config_;
};
TORCH_MODULE(LlamaForCausalLM);

// Combines causality (by cache slot), sliding window, padding and an optional explicit mask
// into [B, 1, T, S] bool. A query may always attend to itself, so rows for padding queries
// are never empty (their outputs are garbage that callers ignore, but never NaN).
torch::Tensor build_attention_mask(const torch::Tensor& attention_mask, int64_t batch, int64_t past,
                                   int64_t new_tokens, std::optional<int64_t> sliding_window,
                                   const torch::Device& device);

}  // namespace flywheel
