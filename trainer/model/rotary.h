// Rotary position embeddings in the rotate-half layout Hugging Face Llama uses.
//   inv_freq[i] = 1 / theta^(2i / D), i < D/2, optionally rescaled (linear, llama3)
//   cos/sin[b, t] = cat(pos[b, t] * inv_freq, pos[b, t] * inv_freq)   (float32)
//   rope(x) = x * cos + rotate_half(x) * sin,  rotate_half([x1, x2]) = [-x2, x1]
#pragma once

#include <torch/torch.h>

#include <utility>

#include "trainer/model/model_config.h"

namespace flywheel {

// [D/2] float32 inverse frequencies, with config.rope_scaling applied.
torch::Tensor rope_inv_freq(const ModelConfig& config);

// position_ids [B, T] (int64) -> {cos, sin}, each [B, T, D] float32.
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq,
                                                     const torch::Tensor& position_ids);

// x [B, H, T, D]; cos/sin [B, T, D] (cast to x's dtype, as Hugging Face does).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin);

}  // namespace flywheel
