#include "trainer/model/llama.h"

#include "trainer/model/activation_checkpoint.h"
#include "trainer/model/fused_cpu.h"
#include "trainer/model/fused_cpu_autograd.h"
#include "trainer/model/parameter_storage.h"
#include "trainer/model/rotary.h"

namespace flywheel {
namespace nn = torch::nn;

namespace {

Linear linear(int64_t in, int64_t out, bool bias, const ModelConfig& config) {
  return Linear(in, out, bias, config.parameter_options());
}

}  // namespace

// ---- building blocks ----

void LinearImpl::reset() {
  weight = register_parameter("weight", new_parameter({out_, in_}, options_));
  if (has_bias_) bias = register_parameter("bias", new_parameter({out_}, options_));
}

void EmbeddingImpl::reset() {
  weight = register_parameter("weight", new_parameter({num_, dim_}, options_));
}

void RMSNormImpl::reset() {
  weight = register_parameter("weight", new_parameter({dim_}, options_));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  if (fused_cpu_applies(x)) return rms_norm_cpu(x, weight, eps_);
  if (fused_cpu_autograd_applies(x)) return rms_norm_autograd_cpu(x, weight, eps_);
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * h.to(x.scalar_type());
}

void AttentionImpl::reset() {
  const auto& c = config_;
  q_proj = register_module(
      "q_proj", linear(c.hidden_size, c.num_attention_heads * c.head_dim, c.qkv_bias, c));
  k_proj = register_module(
      "k_proj", linear(c.hidden_size, c.num_key_value_heads * c.head_dim, c.qkv_bias, c));
  v_proj = register_module(
      "v_proj", linear(c.hidden_size, c.num_key_value_heads * c.head_dim, c.qkv_bias, c));
  o_proj = register_module("o_proj",
                           linear(c.num_attention_heads * c.head_dim, c.hidden_size, c.o_bias, c));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& mask,
                                     AttentionCache* cache, int64_t layer) {
  const auto B = x.size(0), T = x.size(1);
  const auto H = config_.num_attention_heads, K = config_.num_key_value_heads, D = config_.head_dim;
  auto q = q_proj(x).view({B, T, H, D});
  auto k = k_proj(x).view({B, T, K, D});
  auto v = v_proj(x).view({B, T, K, D}).transpose(1, 2);  // [B, K, T, D]
  if (fused_cpu_applies(x)) {
    rope_cpu_(q, cos, sin);
    rope_cpu_(k, cos, sin);
    q = q.transpose(1, 2);  // [B, H, T, D]
    k = k.transpose(1, 2);  // [B, K, T, D]
  } else if (fused_cpu_autograd_applies(x)) {
    q = rope_autograd_cpu(q, cos, sin).transpose(1, 2);
    k = rope_autograd_cpu(k, cos, sin).transpose(1, 2);
  } else {
    q = apply_rope(q.transpose(1, 2), cos, sin);
    k = apply_rope(k.transpose(1, 2), cos, sin);
  }
  // With no mask the call is plain causal, which forward() only asks for when T == S.
  auto out = cache != nullptr ? cache->attend(layer, q, k, v, mask)
                              : grouped_attention(q, k, v, mask);  // [B, H, T, D]
  return o_proj(out.transpose(1, 2).reshape({B, T, H * D}));
}

void MLPImpl::reset() {
  const auto& c = config_;
  gate_proj =
      register_module("gate_proj", linear(c.hidden_size, c.intermediate_size, c.mlp_bias, c));
  up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size, c.mlp_bias, c));
  down_proj =
      register_module("down_proj", linear(c.intermediate_size, c.hidden_size, c.mlp_bias, c));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  if (fused_cpu_applies(x)) return down_proj(silu_mul_cpu(gate_proj(x), up_proj(x)));
  if (fused_cpu_autograd_applies(x))
    return down_proj(silu_mul_autograd_cpu(gate_proj(x), up_proj(x)));
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

void DecoderLayerImpl::reset() {
  self_attn = register_module("self_attn", Attention(config_));
  mlp = register_module("mlp", MLP(config_));
  input_layernorm = register_module(
      "input_layernorm",
      RMSNorm(config_.hidden_size, config_.rms_norm_eps, config_.parameter_options()));
  post_attention_layernorm = register_module(
      "post_attention_layernorm",
      RMSNorm(config_.hidden_size, config_.rms_norm_eps, config_.parameter_options()));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                        const torch::Tensor& sin, const torch::Tensor& mask,
                                        AttentionCache* cache, int64_t layer) {
  auto h = x + self_attn(input_layernorm(x), cos, sin, mask, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

// ---- the decoder ----

torch::Tensor build_attention_mask(const torch::Tensor& attention_mask, int64_t batch, int64_t past,
                                   int64_t new_tokens, std::optional<int64_t> sliding_window,
                                   const torch::Device& device) {
  const auto S = past + new_tokens;
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  auto q_slot = torch::arange(past, S, opts).unsqueeze(1);  // [T, 1]
  auto k_slot = torch::arange(0, S, opts).unsqueeze(0);     // [1, S]
  auto allowed = k_slot <= q_slot;                          // [T, S]
  if (sliding_window) allowed = allowed.logical_and(q_slot - k_slot < *sliding_window);
  auto mask = allowed.unsqueeze(0).unsqueeze(0).expand({batch, 1, new_tokens, S});
  if (attention_mask.defined()) {
    if (attention_mask.dim() == 2) {
      TORCH_CHECK(attention_mask.size(0) == batch && attention_mask.size(1) == S,
                  "attention_mask must be [B, cached + T] = [", batch, ", ", S, "], got ",
                  attention_mask.sizes());
      mask = mask.logical_and(attention_mask.to(torch::kBool).view({batch, 1, 1, S}));
    } else {
      TORCH_CHECK(attention_mask.dim() == 3 && attention_mask.size(0) == batch &&
                      attention_mask.size(1) == new_tokens && attention_mask.size(2) == S,
                  "a 3-d attention_mask must be [B, T, S] = [", batch, ", ", new_tokens, ", ", S,
                  "], got ", attention_mask.sizes());
      mask = mask.logical_and(attention_mask.to(torch::kBool).unsqueeze(1));
    }
  }
  return mask.logical_or((k_slot == q_slot).view({1, 1, new_tokens, S}));
}

void LlamaModelImpl::reset() {
  embed_tokens = register_module("embed_tokens", Embedding(config_.vocab_size, config_.hidden_size,
                                                           config_.parameter_options()));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
    layers->push_back(DecoderLayer(config_));
  norm = register_module(
      "norm", RMSNorm(config_.hidden_size, config_.rms_norm_eps, config_.parameter_options()));
  inv_freq_ = rope_inv_freq(config_);
}

torch::Tensor LlamaModelImpl::forward(const DecoderInput& in) {
  const auto& ids = in.input_ids;
  TORCH_CHECK(ids.dim() == 2, "input_ids must be [B, T], got ", ids.sizes());
  const auto B = ids.size(0), T = ids.size(1);
  const int64_t past = in.cache != nullptr ? in.cache->length() : 0;

  auto position_ids = in.position_ids;
  if (!position_ids.defined()) {
    if (in.attention_mask.defined() && in.attention_mask.dim() == 2) {
      position_ids = (in.attention_mask.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
      position_ids = position_ids.narrow(1, past, T);
    } else {
      position_ids = torch::arange(past, past + T, ids.options().dtype(torch::kInt64))
                         .unsqueeze(0)
                         .expand({B, T});
    }
  }
  TORCH_CHECK(position_ids.sizes() == ids.sizes(), "position_ids must match input_ids ",
              ids.sizes(), ", got ", position_ids.sizes());

  // Plain causal attention needs no mask tensor, which lets SDPA pick flash attention.
  const bool no_padding = !in.attention_mask.defined() ||
                          (in.right_padded && in.attention_mask.dim() == 2 && in.cache == nullptr);
  const bool plain_causal = (no_padding && past == 0 && !config_.sliding_window) ||
                            (in.cache != nullptr && in.cache->masks_itself());
  auto mask = plain_causal ? torch::Tensor()
                           : build_attention_mask(in.attention_mask, B, past, T,
                                                  config_.sliding_window, ids.device());

  // Computed on the CPU (the same float32 values on any device), kept where the model runs:
  // moved once, not copied every forward (a copy would also break CUDA graph capture).
  if (inv_freq_.device() != ids.device()) inv_freq_ = inv_freq_.to(ids.device());
  auto [cos, sin] = rope_cos_sin(inv_freq_, position_ids);
  auto* gather = parameter_gather;
  if (gather != nullptr) gather->begin_embedding();
  auto h = embed_tokens(ids);
  if (gather != nullptr) gather->end_embedding();
  const auto replayed =
      activation_checkpointing && in.cache != nullptr ? in.cache->replay_copy() : nullptr;
  const bool checkpoint = activation_checkpointing && (in.cache == nullptr || replayed) &&
                          torch::GradMode::is_enabled();
  for (int64_t i = 0; i < static_cast<int64_t>(layers->size()); ++i) {
    auto* layer = layers[i]->as<DecoderLayer>();
    if (gather != nullptr) gather->begin_layer(i);
    if (!checkpoint) {
      h = layer->forward(h, cos, sin, mask, in.cache, i);
    } else {
      std::vector<torch::Tensor> params;
      for (const auto& p : layer->parameters()) {
        if (p.requires_grad()) params.push_back(p);
      }
      h = checkpointed(
          [layer, cos, sin, mask, replayed, i](const torch::Tensor& x) {
            return layer->forward(x, cos, sin, mask, replayed.get(), i);
          },
          h, params);
    }
    if (gather != nullptr) h = gather->end_layer(i, h);
  }
  if (in.cache != nullptr) in.cache->advance(T);
  if (gather != nullptr) gather->begin_head();
  return norm(h);
}

void LlamaForCausalLMImpl::reset() {
  model = register_module("model", LlamaModel(config_));
  if (!config_.tie_word_embeddings) {
    lm_head =
        register_module("lm_head", linear(config_.hidden_size, config_.vocab_size, false, config_));
  }
}

torch::Tensor LlamaForCausalLMImpl::logits(const torch::Tensor& hidden) {
  if (lm_head) return lm_head(hidden);
  return torch::matmul(hidden, model->embed_tokens->weight.t());
}

torch::Tensor LlamaForCausalLMImpl::head_weight() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

torch::Tensor LlamaForCausalLMImpl::forward(const DecoderInput& in) {
  return logits(model(in));
}

KVCache LlamaForCausalLMImpl::make_cache(int64_t batch, int64_t capacity) const {
  auto w = model->embed_tokens->weight;
  return KVCache(config_.num_hidden_layers, batch, config_.num_key_value_heads, capacity,
                 config_.head_dim, w.options().requires_grad(false));
}

}  // namespace flywheel
