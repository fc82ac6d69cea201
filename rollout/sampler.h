// Next-token selection from logits: a straight pipeline temperature -> top-k -> top-p ->
// sample, or argmax when greedy.
#pragma once

#include <torch/torch.h>

namespace flywheel {

struct SamplerOptions {
  bool greedy = false;
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // in (0, 1]; 1 = off
  // Validates ranges; UserError naming the option (`prefix` + name) otherwise.
  void validate(const std::string& prefix) const;
};

// logits [B, V] -> token ids [B] (int64). `generator` drives the sampling (seeded by caller).
torch::Tensor sample_next(const torch::Tensor& logits, const SamplerOptions& options,
                          torch::Generator& generator);

}  // namespace flywheel
