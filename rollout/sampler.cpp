#include "rollout/sampler.h"

#include <limits>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

void SamplingParams::validate(const std::string& prefix) const {
  if (!(temperature >= 0)) {
    throw UserError(prefix + "temperature must be >= 0 (0 = greedy), got " +
                    std::to_string(temperature));
  }
  if (top_k < 0) throw UserError(prefix + "top_k must be >= 0, got " + std::to_string(top_k));
  if (!(top_p > 0 && top_p <= 1)) {
    throw UserError(prefix + "top_p must be in (0, 1], got " + std::to_string(top_p));
  }
  if (!(min_p >= 0 && min_p < 1)) {
    throw UserError(prefix + "min_p must be in [0, 1), got " + std::to_string(min_p));
  }
}

torch::Tensor apply_temperature(const torch::Tensor& scores, double temperature) {
  return temperature == 1.0 ? scores : scores / temperature;
}

torch::Tensor apply_top_k(const torch::Tensor& scores, int64_t k) {
  if (k <= 0 || k >= scores.size(-1)) return scores;
  const auto kth = std::get<0>(scores.topk(k, -1)).narrow(-1, k - 1, 1);  // [..., 1]
  return scores.masked_fill(scores < kth, kNegInf);
}

torch::Tensor apply_top_p(const torch::Tensor& scores, double p) {
  if (p >= 1.0) return scores;
  auto [sorted, order] = scores.sort(-1, /*descending=*/true);
  const auto probs = sorted.softmax(-1);
  // A token is dropped when the tokens before it already reach p.
  const auto drop_sorted = (probs.cumsum(-1) - probs) >= p;
  const auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
  return scores.masked_fill(drop, kNegInf);
}

torch::Tensor apply_min_p(const torch::Tensor& scores, double p) {
  if (p <= 0.0) return scores;
  // p_i >= p * p_max  <=>  s_i >= s_max + log p (the softmax's normaliser cancels).
  const auto threshold = std::get<0>(scores.max(-1, /*keepdim=*/true)) + std::log(p);
  return scores.masked_fill(scores < threshold, kNegInf);
}

torch::Tensor sampling_logprobs(const torch::Tensor& logits, const SamplingParams& params) {
  auto scores = logits.to(torch::kFloat32);
  if (!params.greedy()) {
    scores = apply_temperature(scores, params.temperature);
    scores = apply_top_k(scores, params.top_k);
    scores = apply_top_p(scores, params.top_p);
    scores = apply_min_p(scores, params.min_p);
  }
  return scores.log_softmax(-1);
}

uint64_t request_seed(uint64_t seed, uint64_t request, uint64_t sample) {
  // splitmix64's finaliser over each word in turn.
  const auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ request) ^ sample);
}

SampledToken sample_token(const torch::Tensor& logits, const SamplingParams& params,
                          torch::Generator& generator, const std::vector<int64_t>& banned) {
  TORCH_CHECK(logits.dim() == 1, "sample_token takes one row of logits [V], got ", logits.sizes());
  const auto model = logits.to(torch::kFloat32).log_softmax(-1);  // [V]
  // The stages are shift-invariant, so they may run on log-probs as on logits.
  auto allowed = model;
  if (!banned.empty()) {
    allowed = model.index_fill(0, torch::tensor(banned, torch::kInt64).to(model.device()), kNegInf);
  }
  torch::Tensor token, logprob;  // [1]
  if (params.greedy()) {
    token = allowed.argmax().view({1});
    logprob = torch::zeros({1}, model.options());
  } else {
    const auto logprobs = sampling_logprobs(allowed, params);
    token = torch::multinomial(logprobs.exp(), 1, /*replacement=*/false, generator);
    logprob = logprobs.index_select(0, token);
  }
  // One transfer of the three figures (one synchronisation on a GPU).
  const auto picked = torch::cat({token.to(torch::kFloat64), logprob.to(torch::kFloat64),
                                  model.index_select(0, token).to(torch::kFloat64)})
                          .cpu();
  const auto* v = picked.data_ptr<double>();
  return {static_cast<int64_t>(v[0]), v[1], v[2]};
}

}  // namespace flywheel
