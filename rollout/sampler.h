// Next-token selection for one request's row of logits: a straight pipeline of small stages,
//   temperature -> top-k -> top-p -> min-p -> sample (argmax at temperature 0),
// each a pure function of float32 scores [..., V] (masked entries -inf). Every request draws
// from a generator of its own, seeded from (seed, request index, sample index), so a
// request's samples do not depend on what else is batched with it, nor on how many ranks
// share the work.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace flywheel {

struct SamplingParams {
  double temperature = 1.0;  // >= 0; 0 = greedy (argmax)
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // in (0, 1]; 1 = off
  double min_p = 0.0;        // in [0, 1); 0 = off
  // UserError naming the option (`prefix` + name) when out of range.
  void validate(const std::string& prefix) const;
  bool greedy() const { return temperature == 0; }
};

// The stages. Scores are float32 [..., V]; each keeps the shape and masks with -inf.
torch::Tensor apply_temperature(const torch::Tensor& scores, double temperature);
// Keeps the k largest (ties at the k-th value kept too).
torch::Tensor apply_top_k(const torch::Tensor& scores, int64_t k);
// Keeps the smallest set of most likely tokens whose probability reaches p (always the most
// likely one).
torch::Tensor apply_top_p(const torch::Tensor& scores, double p);
// Keeps the tokens whose probability is at least p times the most likely one's.
torch::Tensor apply_min_p(const torch::Tensor& scores, double p);

// The log-probabilities [..., V] of the distribution `params` samples from (float32); at
// temperature 0, of the model's distribution (greedy takes its argmax).
torch::Tensor sampling_logprobs(const torch::Tensor& logits, const SamplingParams& params);

// A request's generator: seeded from (seed, request, sample) by a 64-bit mix, so that
// neighbouring requests and samples get unrelated streams.
uint64_t request_seed(uint64_t seed, uint64_t request, uint64_t sample);

struct SampledToken {
  int64_t token = 0;
  double logprob = 0;        // under the distribution sampled from (0 when greedy)
  double model_logprob = 0;  // under the model's own distribution at temperature 1
};

// Draws the next token from one row of logits [V] (any dtype, on any device). `banned` ids
// (stop tokens before min_new_tokens) are never drawn; the model log-prob ignores the ban.
SampledToken sample_token(const torch::Tensor& logits, const SamplingParams& params,
                          torch::Generator& generator, const std::vector<int64_t>& banned = {});

}  // namespace flywheel
