// The sampler's stages against probabilities worked out by hand on small distributions, and
// seeded sampling: reproducible, distributed as the stages say, one stream per request.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "rollout/sampler.h"
#include "trainer/core/error.h"

namespace flywheel {
namespace {

// Logits whose softmax is `probs` (log-probabilities, shifted: softmax ignores the shift).
torch::Tensor logits_of(const std::vector<double>& probs) {
  return torch::tensor(probs, torch::kFloat64).log().to(torch::kFloat32) + 3.0f;
}

void expect_probs(const torch::Tensor& scores, const std::vector<double>& want) {
  const auto got = scores.softmax(-1).to(torch::kFloat64);
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[static_cast<int64_t>(i)].item<double>(), want[i], 1e-6) << "entry " << i;
}

const std::vector<double> kProbs = {0.1, 0.2, 0.3, 0.4};

TEST(Sampler, TemperatureSharpensAndFlattens) {
  // T = 2: p^(1/2) renormalised; T = 0.5: p^2 renormalised.
  const double root = std::sqrt(0.1) + std::sqrt(0.2) + std::sqrt(0.3) + std::sqrt(0.4);
  expect_probs(
      apply_temperature(logits_of(kProbs), 2.0),
      {std::sqrt(0.1) / root, std::sqrt(0.2) / root, std::sqrt(0.3) / root, std::sqrt(0.4) / root});
  expect_probs(apply_temperature(logits_of(kProbs), 0.5),
               {0.01 / 0.3, 0.04 / 0.3, 0.09 / 0.3, 0.16 / 0.3});
}

TEST(Sampler, TopKKeepsTheKLargest) {
  expect_probs(apply_top_k(logits_of(kProbs), 2), {0, 0, 3.0 / 7, 4.0 / 7});
  expect_probs(apply_top_k(logits_of(kProbs), 1), {0, 0, 0, 1});
  expect_probs(apply_top_k(logits_of(kProbs), 0), kProbs);  // off
  expect_probs(apply_top_k(logits_of(kProbs), 9), kProbs);  // more than V: off
  // Ties at the k-th value are kept.
  expect_probs(apply_top_k(logits_of({0.1, 0.3, 0.3, 0.3}), 2), {0, 1.0 / 3, 1.0 / 3, 1.0 / 3});
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // Sorted 0.4, 0.3, 0.2, 0.1: the mass before each is 0, 0.4, 0.7, 0.9.
  expect_probs(apply_top_p(logits_of(kProbs), 0.5), {0, 0, 3.0 / 7, 4.0 / 7});
  expect_probs(apply_top_p(logits_of(kProbs), 0.4), {0, 0, 0, 1});  // 0.4 alone reaches it
  expect_probs(apply_top_p(logits_of(kProbs), 0.75), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
  expect_probs(apply_top_p(logits_of(kProbs), 0.05), {0, 0, 0, 1});  // the top one stays
  expect_probs(apply_top_p(logits_of(kProbs), 1.0), kProbs);
}

TEST(Sampler, MinPDropsTokensFarBelowTheTopOne) {
  // p_max = 0.4: min_p 0.5 keeps p >= 0.2, min_p 0.8 keeps p >= 0.32.
  expect_probs(apply_min_p(logits_of(kProbs), 0.5), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
  expect_probs(apply_min_p(logits_of(kProbs), 0.8), {0, 0, 0, 1});
  expect_probs(apply_min_p(logits_of(kProbs), 0.0), kProbs);
}

TEST(Sampler, StagesRunInOrder) {
  // Temperature 0.5 first (0.01, 0.04, 0.09, 0.16 over 0.3), then top-p 0.6 over that: the
  // mass before each sorted entry is 0, 0.533, 0.833, so two tokens stay.
  SamplingParams params;
  params.temperature = 0.5;
  params.top_p = 0.6;
  expect_probs(sampling_logprobs(logits_of(kProbs), params), {0, 0, 0.09 / 0.25, 0.16 / 0.25});
  // top-k 3 then min-p 0.7 (of 0.4: keeps p/0.9 >= 0.7 * 0.4/0.9, i.e. 0.3 and 0.4).
  params = {};
  params.top_k = 3;
  params.min_p = 0.7;
  expect_probs(sampling_logprobs(logits_of({0.1, 0.2, 0.3, 0.4}), params),
               {0, 0, 3.0 / 7, 4.0 / 7});
}

// One row's draw number `draw` of stream `stream`.
SampledToken draw_one(const torch::Tensor& logits, const SamplingParams& params, uint64_t stream,
                      uint64_t draw, const std::vector<int64_t>* banned = nullptr) {
  return sample_rows(logits.view({1, -1}), {{&params, stream, draw, banned}})[0];
}

TEST(Sampler, GreedyTakesTheArgmaxAndReportsBothLogProbs) {
  SamplingParams greedy;
  greedy.temperature = 0;
  const auto t = draw_one(logits_of(kProbs), greedy, 1, 0);
  EXPECT_EQ(t.token, 3);
  EXPECT_EQ(t.logprob, 0);  // a point mass
  EXPECT_NEAR(t.model_logprob, std::log(0.4), 1e-6);
}

TEST(Sampler, SampledLogProbsAreOfTheSampledAndOfTheModelDistribution) {
  SamplingParams params;
  params.temperature = 2.0;
  params.top_k = 2;  // keeps 0.3 and 0.4, at T = 2: sqrt(0.3), sqrt(0.4) renormalised
  const double kept = std::sqrt(0.3) + std::sqrt(0.4);
  for (uint64_t i = 0; i < 20; ++i) {
    const auto t = draw_one(logits_of(kProbs), params, 7, i);
    ASSERT_TRUE(t.token == 2 || t.token == 3) << t.token;
    EXPECT_NEAR(t.logprob, std::log(std::sqrt(kProbs[t.token]) / kept), 1e-6);
    EXPECT_NEAR(t.model_logprob, std::log(kProbs[t.token]), 1e-6);
  }
}

TEST(Sampler, BannedTokensAreNeverDrawnButKeepTheirModelLogProb) {
  SamplingParams params;
  const std::vector<int64_t> banned = {3, 1};
  for (uint64_t i = 0; i < 50; ++i) {
    const auto t = draw_one(logits_of(kProbs), params, 4, i, &banned);
    ASSERT_TRUE(t.token == 0 || t.token == 2) << t.token;
    EXPECT_NEAR(t.logprob, std::log(kProbs[t.token] / 0.4), 1e-6);  // 0.1 and 0.3 remain
    EXPECT_NEAR(t.model_logprob, std::log(kProbs[t.token]), 1e-6);
  }
  SamplingParams greedy;
  greedy.temperature = 0;
  EXPECT_EQ(draw_one(logits_of(kProbs), greedy, 4, 0, &banned).token, 2);
}

// The inverse CDF: u in [0, 0.1) -> 0, [0.1, 0.3) -> 1, ... and never a token of no mass,
// even for u just below 1 or probabilities that do not sum to 1.
TEST(Sampler, InverseCdfMapsUniformsToTokens) {
  const auto probs = torch::tensor({0.1, 0.2, 0.0, 0.3, 0.4, 0.0}, torch::kFloat32).repeat({6, 1});
  const auto u = torch::tensor({0.0, 0.05, 0.15, 0.31, 0.65, 1.0 - 0x1.0p-53}, torch::kFloat64);
  const auto got = inverse_cdf(probs, u);
  EXPECT_EQ(std::vector<int64_t>(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + 6),
            (std::vector<int64_t>{0, 0, 1, 3, 4, 4}));
  const auto scaled = inverse_cdf(probs * 7.0, u);  // any total
  EXPECT_TRUE(torch::equal(scaled, got));
}

TEST(Sampler, SeededSamplesAreReproducibleAndDistributedAsPlanned) {
  SamplingParams params;
  params.min_p = 0.5;  // 0, 2/9, 3/9, 4/9
  const auto draw = [&](uint64_t stream, int n) {
    std::vector<int64_t> out;
    for (int i = 0; i < n; ++i)
      out.push_back(draw_one(logits_of(kProbs), params, stream, static_cast<uint64_t>(i)).token);
    return out;
  };
  EXPECT_EQ(draw(11, 50), draw(11, 50));
  EXPECT_NE(draw(11, 50), draw(12, 50));
  const int n = 20000;
  std::vector<double> freq(4, 0);
  for (auto t : draw(3, n))
    freq[t] += 1.0 / n;
  EXPECT_EQ(freq[0], 0);
  // 4 standard deviations of a frequency from 20000 draws is at most 0.0142.
  EXPECT_NEAR(freq[1], 2.0 / 9, 0.0142);
  EXPECT_NEAR(freq[2], 3.0 / 9, 0.0142);
  EXPECT_NEAR(freq[3], 4.0 / 9, 0.0142);
}

// Rows of different parameters, streams and bans in one call draw exactly what each draws
// alone: the batch changes nothing.
TEST(Sampler, RowsDrawTheSameAloneAndTogether) {
  SamplingParams hot, nucleus, greedy;
  hot.temperature = 1.7;
  nucleus.top_p = 0.8;
  nucleus.top_k = 3;
  greedy.temperature = 0;
  const std::vector<int64_t> banned = {3};
  const auto logits = torch::randn({5, 11}, at::make_generator<at::CPUGeneratorImpl>(3));
  const std::vector<RowSampling> rows = {{&hot, 1, 0, nullptr},
                                         {&nucleus, 2, 5, nullptr},
                                         {&greedy, 3, 1, nullptr},
                                         {&hot, 4, 9, &banned},
                                         {&nucleus, 5, 2, &banned}};
  for (int repeat = 0; repeat < 20; ++repeat) {
    std::vector<RowSampling> shifted = rows;
    for (auto& r : shifted)
      r.draw += static_cast<uint64_t>(repeat);
    const auto together = sample_rows(logits, shifted);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto alone = sample_rows(logits[static_cast<int64_t>(i)].view({1, -1}), {shifted[i]});
      EXPECT_EQ(alone[0].token, together[i].token) << "row " << i;
      EXPECT_EQ(alone[0].logprob, together[i].logprob) << "row " << i;
      EXPECT_EQ(alone[0].model_logprob, together[i].model_logprob) << "row " << i;
    }
  }
}

TEST(Sampler, NonFiniteLogitsAreAnErrorNotAToken) {
  SamplingParams params, greedy;
  greedy.temperature = 0;
  auto logits = logits_of(kProbs);
  logits[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(draw_one(logits, params, 1, 0), c10::Error);
  EXPECT_THROW(draw_one(logits, greedy, 1, 0), c10::Error);
}

TEST(Sampler, StreamUniformsAreUniform) {
  // 100000 draws over 10 bins: each within 5 standard deviations (~0.0047) of 0.1.
  std::vector<double> bins(10, 0);
  for (uint64_t t = 0; t < 100000; ++t) {
    const double u = stream_uniform(request_seed(1, 2, 3), t);
    ASSERT_TRUE(u >= 0 && u < 1);
    bins[static_cast<size_t>(u * 10)] += 1e-5;
  }
  for (auto b : bins)
    EXPECT_NEAR(b, 0.1, 0.0047);
}

TEST(Sampler, EveryRequestAndSampleGetsItsOwnSeed) {
  std::set<uint64_t> seeds;
  for (uint64_t seed : {0, 1})
    for (uint64_t request = 0; request < 50; ++request)
      for (uint64_t sample = 0; sample < 8; ++sample)
        seeds.insert(request_seed(seed, request, sample));
  EXPECT_EQ(seeds.size(), 2u * 50 * 8);
  EXPECT_EQ(request_seed(5, 3, 2), request_seed(5, 3, 2));
}

// The one-pass CPU path (rows with only a temperature, greedy, bans) draws what the tensor
// stages draw, with log-probs equal to float32 rounding; vocabularies that are and are not a
// whole number of vectors.
TEST(Sampler, CpuRowsDrawWhatTheStagesDraw) {
  SamplingParams plain, hot, cold, greedy;
  hot.temperature = 1.7;
  cold.temperature = 0.3;
  greedy.temperature = 0;
  const std::vector<int64_t> banned = {0, 5, 9};
  const std::vector<const SamplingParams*> kinds = {&plain, &hot, &cold, &greedy};
  for (const int64_t vocab : {11, 512, 1003}) {
    const auto logits =
        3 * torch::randn({40, vocab}, at::make_generator<at::CPUGeneratorImpl>(vocab));
    std::vector<RowSampling> rows;
    for (uint64_t r = 0; r < 40; ++r)
      rows.push_back({kinds[r % 4], request_seed(1, r, 0), r, r % 3 == 0 ? &banned : nullptr});
    const auto fast = sample_rows(logits, rows);
    const auto staged = sample_rows_staged(logits, rows);
    for (size_t r = 0; r < rows.size(); ++r) {
      EXPECT_EQ(fast[r].token, staged[r].token) << "vocab " << vocab << " row " << r;
      EXPECT_NEAR(fast[r].logprob, staged[r].logprob, 1e-5) << "vocab " << vocab << " row " << r;
      EXPECT_NEAR(fast[r].model_logprob, staged[r].model_logprob, 1e-5)
          << "vocab " << vocab << " row " << r;
      if (rows[r].banned != nullptr) {
        EXPECT_EQ(std::count(banned.begin(), banned.end(), fast[r].token), 0) << "row " << r;
      }
    }
  }
}

TEST(Sampler, OutOfRangeParametersAreUserErrors) {
  const auto bad = [](auto set) {
    SamplingParams p;
    set(p);
    EXPECT_THROW(p.validate("--"), UserError);
  };
  bad([](SamplingParams& p) { p.temperature = -1; });
  bad([](SamplingParams& p) { p.top_k = -1; });
  bad([](SamplingParams& p) { p.top_p = 0; });
  bad([](SamplingParams& p) { p.top_p = 1.5; });
  bad([](SamplingParams& p) { p.min_p = 1; });
  EXPECT_NO_THROW(SamplingParams{}.validate("--"));
}

}  // namespace
}  // namespace flywheel
