// Batched autoregressive generation with a KV cache. Prompts of different lengths are left
// padded; each row stops at its first stop token or after max_new_tokens. This is the simple
// loop the `generate` command uses; continuous batching lives in the rollout engine.
#pragma once

#include <cstdint>
#include <vector>

#include "rollout/sampler.h"
#include "trainer/model/llama.h"

namespace flywheel {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampler;
  std::vector<int64_t> stop_ids;  // e.g. eos ids; the stop token is included in the output
  uint64_t seed = 0;              // prompt b samples from request_seed(seed, b, 0)
  int64_t pad_id = 0;             // any valid id; padded slots are masked out
};

// Returns the generated ids of each prompt (without the prompt).
std::vector<std::vector<int64_t>> generate(LlamaForCausalLM& model,
                                           const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& options);

}  // namespace flywheel
