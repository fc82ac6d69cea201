// Next-token selection for a step's rows of logits: a straight pipeline of small stages,
//   temperature -> top-k -> top-p -> min-p -> sample (argmax at temperature 0),
// each a pure function of float32 scores [..., V] (masked entries -inf), run on the logits'
// device over all the rows that share parameters at once.
//
// Randomness is counter-based: a sequence's t-th draw is one uniform number made from its
// stream's seed (request_seed(seed, request index, sample index)) and t, by a 64-bit mix on
// the host. The token is where that number falls in the row's cumulative distribution. So a
// sequence's samples depend on nothing but its own logits: not on the rows batched beside it,
// not on how many ranks share the work, not on the device, and a step's draws cost no
// generator calls and one host transfer for all rows.
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
  bool operator==(const SamplingParams& o) const {
    return temperature == o.temperature && top_k == o.top_k && top_p == o.top_p && min_p == o.min_p;
  }
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

// A sequence's stream: seeded from (seed, request, sample) by a 64-bit mix, so that
// neighbouring requests and samples get unrelated streams.
uint64_t request_seed(uint64_t seed, uint64_t request, uint64_t sample);
// The stream's draw number `t`, uniform in [0, 1) (53 bits).
double stream_uniform(uint64_t stream, uint64_t t);

// Where `u` in [0, 1) falls in each row's distribution: probs [R, V] (non-negative, any
// scale), u [R] float64 -> [R] int64, the first index whose cumulative mass exceeds u times
// the row's total. Never an index of zero mass.
torch::Tensor inverse_cdf(const torch::Tensor& probs, const torch::Tensor& u);

// One row of a step's sampling.
struct RowSampling {
  const SamplingParams* params = nullptr;
  uint64_t stream = 0;  // request_seed(...)
  uint64_t draw = 0;    // which draw of the stream: the sequence's token index
  // Ids never drawn here (stop tokens before min_new_tokens); the model log-prob ignores the
  // ban. Null: none.
  const std::vector<int64_t>* banned = nullptr;
};

struct SampledToken {
  int64_t token = 0;
  double logprob = 0;        // under the distribution sampled from (0 when greedy)
  double model_logprob = 0;  // under the model's own distribution at temperature 1
};

// Draws row r's next token from logits [R, V] (any dtype, on any device): rows with equal
// parameters go through the stages together; one host transfer at the end. On a CPU with
// AVX-512, float32 rows that set only a temperature (or greedy) skip the tensor stages: each is
// sampled in one pass over its row (the same arithmetic, exp to within float32 rounding), which
// at decoding's small shapes costs a fraction of the stages' calls. The path is chosen per row,
// by its own parameters, so rows still draw the same alone and together.
std::vector<SampledToken> sample_rows(const torch::Tensor& logits,
                                      const std::vector<RowSampling>& rows);
// sample_rows with every row through the tensor stages (what other devices and dtypes take).
std::vector<SampledToken> sample_rows_staged(const torch::Tensor& logits,
                                             const std::vector<RowSampling>& rows);

}  // namespace flywheel
