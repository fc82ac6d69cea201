// The memory savers change what is kept for backward, never the numbers: label log-probs
// through the LM head (whole or chunked) and activation checkpointing give the values and
// gradients of plain LibTorch autograd (float32, <= 1e-6 relative).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "losses/logprobs.h"
#include "tests/fixtures.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/labels.h"
#include "trainer/model/activation_checkpoint.h"

namespace flywheel {
namespace {

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).norm().item<double>() / want.norm().item<double>();
}

// V = 97: six whole vectors and a tail for the CPU kernel (softmax_rows.h).
TEST(ChunkedLogps, ValuesAndGradientsMatchTheFullLogits) {
  torch::manual_seed(0);
  const int64_t B = 3, T = 11, C = 16, V = 97;
  const auto hidden0 = torch::randn({B, T, C});
  const auto weight0 = torch::randn({V, C}) * 0.3;
  auto labels = torch::randint(V, {B, T}, torch::kInt64);
  labels.index_put_({0, torch::indexing::Slice(0, 4)}, kIgnoreIndex);  // a prompt
  labels.index_put_({2, torch::indexing::Slice(7, T)}, kIgnoreIndex);  // padding
  const auto coefficients = torch::randn({B});

  struct Run {
    losses::SequenceLogps logps;
    torch::Tensor grad_hidden, grad_weight;
  };
  // chunk < 0: the logits formed by matmul and scored by LibTorch's own ops under autograd.
  const auto run = [&](int64_t chunk) {
    auto hidden = hidden0.clone().requires_grad_(true);
    auto weight = weight0.clone().requires_grad_(true);
    auto logps = chunk < 0 ? losses::sequence_logps(torch::matmul(hidden, weight.t()), labels)
                           : losses::sequence_logps(hidden, weight, labels, chunk);
    // Sequence sums and token means, weighted: a loss that touches every output.
    ((logps.sum + logps.mean) * coefficients).sum().backward();
    return Run{logps, hidden.grad(), weight.grad()};
  };
  const auto full = run(-1);
  for (int64_t chunk : {0, 1, 4, 1000}) {
    const auto chunked = run(chunk);
    EXPECT_LE(relative_error(chunked.logps.token_logps, full.logps.token_logps), 1e-6) << chunk;
    EXPECT_LE(relative_error(chunked.logps.sum, full.logps.sum), 1e-6) << chunk;
    EXPECT_TRUE(chunked.logps.count.equal(full.logps.count));
    EXPECT_LE(relative_error(chunked.grad_hidden, full.grad_hidden), 1e-6) << chunk;
    EXPECT_LE(relative_error(chunked.grad_weight, full.grad_weight), 1e-6) << chunk;
  }
  // Ignored positions are exactly zero and get no gradient through the head.
  for (int64_t chunk : {0, 4})
    EXPECT_EQ(run(chunk).logps.token_logps[0].narrow(0, 0, 3).abs().sum().item<double>(), 0.0);
  // A label outside the vocabulary is an error, not a read past the row.
  labels.index_put_({1, 5}, V);
  EXPECT_THROW(run(0), c10::Error);
}

// llama-tiny with a padded batch: every parameter's gradient with checkpointed decoder layers
// equals the plain run's.
TEST(ActivationCheckpointing, GradientsEqualThePlainRun) {
  const auto dir = testing::fixtures_dir() + "/llama-tiny";
  FLYWHEEL_REQUIRE_PATH(dir);
  const auto ids = torch::tensor({{1, 5, 9, 200, 33, 7}, {1, 40, 41, 0, 0, 0}}, torch::kInt64);
  const auto mask = torch::tensor({{1, 1, 1, 1, 1, 1}, {1, 1, 1, 0, 0, 0}}, torch::kInt64);
  const auto grads = [&](bool checkpointing) {
    auto model = load_causal_lm(dir);
    model->model->activation_checkpointing = checkpointing;
    model->forward({ids, {}, mask}).log_softmax(-1).select(-1, 3).sum().backward();
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& [name, p] : named_parameters(*model))
      out.emplace_back(name, p.grad());
    return out;
  };
  const auto plain = grads(false), checkpointed = grads(true);
  ASSERT_EQ(plain.size(), checkpointed.size());
  for (size_t k = 0; k < plain.size(); ++k) {
    ASSERT_TRUE(checkpointed[k].second.defined()) << plain[k].first;
    EXPECT_LE(relative_error(checkpointed[k].second, plain[k].second), 1e-6) << plain[k].first;
  }
}

// A block that draws random numbers (dropout) recomputes the same ones in backward, and the
// caller's generator carries on as if there had been no replay.
TEST(ActivationCheckpointing, ReplayDrawsTheForwardsRandomNumbers) {
  const auto w0 = torch::randn({8, 8});
  const auto x0 = torch::randn({4, 8});
  const auto block = [](const torch::Tensor& w) {
    return [w](const torch::Tensor& x) { return torch::dropout(torch::matmul(x, w), 0.5, true); };
  };
  const auto run = [&](bool checkpoint) {
    torch::manual_seed(11);
    auto w = w0.clone().requires_grad_(true);
    auto x = x0.clone().requires_grad_(true);
    auto y = checkpoint ? checkpointed(block(w), x, {w}) : block(w)(x);
    y.pow(2).sum().backward();
    return std::vector<torch::Tensor>{y.detach(), x.grad(), w.grad(), torch::rand({3})};
  };
  const auto plain = run(false), replayed = run(true);
  for (size_t k = 0; k < plain.size(); ++k)
    EXPECT_TRUE(replayed[k].equal(plain[k])) << "output " << k;
}

}  // namespace
}  // namespace flywheel
