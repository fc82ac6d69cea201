// Golden tests of the decoder against Hugging Face LlamaForCausalLM on the llama-tiny fixture
// (random weights, GQA 4 query / 2 KV heads, untied head).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "rollout/engine.h"
#include "tests/fixtures.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/checkpoint/safetensors.h"

namespace flywheel {
namespace {

std::string tiny_dir() {
  return testing::fixtures_dir() + "/llama-tiny";
}

// llama-tiny with the fixture's input ids and Hugging Face's logits for them.
struct TinyWithLogits {
  LlamaForCausalLM model;
  torch::Tensor ids, want;
};
TinyWithLogits load_tiny_with_logits() {
  SafetensorsFile expected(tiny_dir() + "/expected.safetensors");
  return {load_causal_lm(tiny_dir()), expected.tensor("input_ids"), expected.tensor("logits")};
}

TEST(LlamaFixture, FullForwardMatchesHuggingFaceLogits) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto [model, ids, want] = load_tiny_with_logits();  // ids [B, T], want [B, T, V]
  torch::NoGradGuard no_grad;
  auto got = model->forward({ids});
  ASSERT_EQ(got.sizes(), want.sizes());
  const double max_diff = (got - want).abs().max().item<double>();
  std::printf("llama-tiny max |logit diff| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-4);
}

// Right padding: the real tokens' logits must not change when padding is appended.
// Left padding: the same, with position ids restarting at the first real token.
TEST(LlamaFixture, PaddedBatchesMatchUnpadded) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto [model, ids, want] = load_tiny_with_logits();
  torch::NoGradGuard no_grad;
  // Row 0 truncated to two thirds of its tokens, padded back to the fixture's width.
  const int64_t len = 2 * ids.size(1) / 3, pad = ids.size(1) - len;
  auto row = ids[0].narrow(0, 0, len);
  auto right = torch::cat({row, torch::zeros({pad}, torch::kInt64)}).unsqueeze(0);
  auto right_mask = torch::cat({torch::ones({len}), torch::zeros({pad})}).unsqueeze(0);
  auto left = torch::cat({torch::zeros({pad}, torch::kInt64), row}).unsqueeze(0);
  auto left_mask = torch::cat({torch::zeros({pad}), torch::ones({len})}).unsqueeze(0);
  auto batch = torch::cat({right, left});
  auto mask = torch::cat({right_mask, left_mask}).to(torch::kInt64);
  auto got = model->forward({batch, {}, mask});
  auto ref = want[0].narrow(0, 0, len);
  const double right_diff = (got[0].narrow(0, 0, len) - ref).abs().max().item<double>();
  const double left_diff = (got[1].narrow(0, pad, len) - ref).abs().max().item<double>();
  std::printf("right-padded max diff %.3g, left-padded max diff %.3g\n", right_diff, left_diff);
  EXPECT_LT(right_diff, 1e-4);
  EXPECT_LT(left_diff, 1e-4);
  EXPECT_FALSE(got.isnan().any().item<bool>());
}

// collate's right-padded batches run without a mask (SDPA's plain causal path, which may take
// its flash kernel): the real tokens' outputs and gradients equal the masked run's.
TEST(LlamaFixture, RightPaddedBatchesNeedNoMask) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto [model, ids, want] = load_tiny_with_logits();
  const int64_t T = ids.size(1), len = 2 * T / 3;
  auto batch = ids.clone();
  batch[0].narrow(0, len, T - len).fill_(0);
  auto mask = torch::ones_like(batch);
  mask[0].narrow(0, len, T - len).fill_(0);
  const auto run = [&](bool right_padded) {
    model->zero_grad();
    DecoderInput in(batch, {}, mask);
    in.right_padded = right_padded;
    auto logits = model->forward(in);  // [B, T, V]
    auto real = torch::cat({logits[0].narrow(0, 0, len), logits[1]});
    real.square().mean().backward();
    return std::make_tuple(real.detach(), model->lm_head->weight.grad().clone(),
                           logits[0].narrow(0, len, T - len).detach());
  };
  const auto [masked, masked_grad, masked_padding] = run(false);
  const auto [causal, causal_grad, causal_padding] = run(true);
  // The padded positions did attend to each other: the mask was not built.
  EXPECT_GT((masked_padding - causal_padding).abs().max().item<double>(), 1e-3);
  const double diff = (masked - causal).abs().max().item<double>();
  const double grad_diff =
      ((masked_grad - causal_grad).abs().max() / masked_grad.abs().max()).item<double>();
  std::printf("right-padded without a mask: max logit diff %.3g, relative grad diff %.3g\n", diff,
              grad_diff);
  EXPECT_LT(diff, 1e-5);
  EXPECT_LT(grad_diff, 1e-5);
  EXPECT_LT((causal - torch::cat({want[0].narrow(0, 0, len), want[1]})).abs().max().item<double>(),
            1e-4);
}

// Packed rows (two sequences in one row, positions restarting, attention kept inside each
// sequence by a [B, T, T] mask) give each sequence's own logits.
TEST(LlamaFixture, PackedRowMatchesSeparateSequences) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto [model, ids, want] = load_tiny_with_logits();
  torch::NoGradGuard no_grad;
  // The first halves of the fixture's first two rows, one after the other in one row.
  ASSERT_GE(ids.size(0), 2);
  const int64_t a = (ids.size(1) + 1) / 2, b = ids.size(1) / 2;
  auto row = torch::cat({ids[0].narrow(0, 0, a), ids[1].narrow(0, 0, b)}).unsqueeze(0);
  auto positions =
      torch::cat({torch::arange(a, torch::kInt64), torch::arange(b, torch::kInt64)}).unsqueeze(0);
  auto segment = torch::cat({torch::zeros({a}, torch::kInt64), torch::ones({b}, torch::kInt64)});
  auto mask = (segment.unsqueeze(1) == segment.unsqueeze(0)).unsqueeze(0);  // [1, T, T]
  auto got = model->forward({row, positions, mask})[0];
  const double diff =
      std::max((got.narrow(0, 0, a) - want[0].narrow(0, 0, a)).abs().max().item<double>(),
               (got.narrow(0, a, b) - want[1].narrow(0, 0, b)).abs().max().item<double>());
  std::printf("packed row max diff %.3g\n", diff);
  EXPECT_LT(diff, 1e-4);
}

// Decoding one token at a time through the KV cache gives the full-forward logits.
TEST(LlamaFixture, CachedDecodingMatchesFullForward) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto [model, ids, want] = load_tiny_with_logits();
  torch::NoGradGuard no_grad;
  // A prompt of the first third of the fixture's tokens, then one token at a time.
  const int64_t prompt = std::max<int64_t>(1, ids.size(1) / 3);
  auto cache = model->make_cache(ids.size(0), ids.size(1));
  auto prefill = model->forward({ids.narrow(1, 0, prompt), {}, {}, &cache});  // [B, prompt, V]
  double max_diff = (prefill - want.narrow(1, 0, prompt)).abs().max().item<double>();
  for (int64_t t = prompt; t < ids.size(1); ++t) {
    auto step = model->forward({ids.narrow(1, t, 1), {}, {}, &cache});
    max_diff = std::max(max_diff, (step.squeeze(1) - want.select(1, t)).abs().max().item<double>());
  }
  std::printf("cached decoding max diff %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-4);
  EXPECT_EQ(cache.length(), ids.size(1));
}

// Both fixture prompts in one engine run and each alone reproduce HF's greedy ids.
TEST(LlamaFixture, GreedyContinuationsMatchExactly) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto model = load_causal_lm(tiny_dir());
  std::ifstream in(tiny_dir() + "/expected_greedy.json");
  auto cases = nlohmann::json::parse(in);
  std::vector<std::vector<int64_t>> prompts, wants;
  for (const auto& c : cases) {
    prompts.push_back(c["prompt_ids"].get<std::vector<int64_t>>());
    wants.push_back(c["greedy_ids"].get<std::vector<int64_t>>());
  }
  Engine engine(model, {});
  std::vector<Request> requests;
  for (const auto& p : prompts) {
    Request r;
    r.prompt = p;
    r.sampling.temperature = 0;  // greedy
    r.max_new_tokens = static_cast<int64_t>(wants[0].size());
    requests.push_back(r);
  }
  const auto batched = engine.generate(requests);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(batched[i][0].token_ids, wants[i]) << "batched prompt " << i;
    EXPECT_EQ(engine.generate({requests[i]})[0][0].token_ids, wants[i]) << "single prompt " << i;
  }
}

// Loading in bfloat16 runs and stays close to float32 (bf16 has ~3 significant digits).
TEST(LlamaFixture, Bfloat16WeightsRun) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  LoadOptions options;
  options.dtype = torch::kBFloat16;
  auto model = load_causal_lm(tiny_dir(), options);
  SafetensorsFile expected(tiny_dir() + "/expected.safetensors");
  torch::NoGradGuard no_grad;
  auto got = model->forward({expected.tensor("input_ids")}).to(torch::kFloat32);
  auto want = expected.tensor("logits");
  const double rel = ((got - want).norm() / want.norm()).item<double>();
  std::printf("bf16 relative logit error %.3g\n", rel);
  EXPECT_LT(rel, 0.05);
}

TEST(LlamaFixture, SaveLoadRoundTripIsBitIdentical) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto model = load_causal_lm(tiny_dir());
  const auto dir = testing::make_temp_dir("roundtrip");
  save_pretrained(dir, *model, model->config(), /*max_shard_bytes=*/200'000);  // -> shards
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.safetensors.index.json"));
  auto again = load_causal_lm(dir);
  auto a = named_parameters(*model), b = named_parameters(*again);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
