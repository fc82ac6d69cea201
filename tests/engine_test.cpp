// The rollout engine against full recomputation: greedy continuations of prompts of very
// different lengths, run together under a small token budget and few sequences in flight
// (chunked prompts, requests admitted mid-flight as others finish), and under KV memory so
// small that sequences are preempted and recomputed, equal each prompt decoded alone with a
// full forward per token; its log-probs equal the trainer's; samples do not depend on the
// batch or on preemption; n samples share one prefill; stop strings across token boundaries;
// min_new_tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <set>

#include "losses/logprobs.h"
#include "rollout/cpu_decode_step.h"
#include "rollout/engine.h"
#include "tests/fixtures.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/model/init.h"

namespace flywheel {
namespace {

std::string tiny_dir() {
  return testing::fixtures_dir() + "/llama-tiny";
}

std::string stories_dir() {
  return testing::models_dir() + "/stories260K";
}

// Greedy continuation by full recomputation: the whole sequence through the model for every
// new token, no cache.
std::vector<int64_t> greedy_by_recompute(LlamaForCausalLM& model, std::vector<int64_t> ids,
                                         int64_t max_new, const std::vector<int64_t>& stop_ids) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < max_new; ++i) {
    const auto logits = model->forward({torch::tensor(ids, torch::kInt64).view({1, -1})});
    const int64_t next = logits[0][-1].argmax().item<int64_t>();
    out.push_back(next);
    ids.push_back(next);
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) break;
  }
  return out;
}

// Prompts of `lengths` tokens drawn from the vocabulary (ids 3..), deterministic.
std::vector<std::vector<int64_t>> prompts_of(const std::vector<int64_t>& lengths, int64_t vocab) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  std::vector<std::vector<int64_t>> out;
  for (auto n : lengths) {
    const auto t = torch::randint(3, vocab, {n}, gen, torch::kInt64);
    out.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
  }
  return out;
}

// kv_blocks > 0: that little KV memory, so that sequences are preempted.
void expect_greedy_matches_recompute(LlamaForCausalLM model, bool fixed_shape = false,
                                     int64_t kv_blocks = 0, int64_t block_tokens = 16) {
  const auto eos = model->config().eos_token_ids;
  const auto prompts = prompts_of({1, 7, 33, 64, 110, 2, 90}, model->config().vocab_size);
  EngineOptions options;
  options.max_num_seqs = 3;      // requests wait for a place and enter as others leave
  options.max_step_tokens = 48;  // long prompts go in chunks, beside decoding sequences
  options.max_seq_len = 160;
  options.kv_blocks = kv_blocks;
  options.kv_block_tokens = block_tokens;
  options.fixed_shape_decode = fixed_shape;
  Engine engine(model, options);
  std::vector<Request> requests;
  for (const auto& p : prompts) {
    Request r;
    r.prompt = p;
    r.sampling.temperature = 0;
    r.max_new_tokens = 48;
    r.stop_ids = eos;
    requests.push_back(r);
  }
  const auto got = engine.generate(requests);
  ASSERT_EQ(got.size(), prompts.size());
  std::set<size_t> lengths;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto want = greedy_by_recompute(model, prompts[i], 48, eos);
    EXPECT_EQ(got[i][0].token_ids, want) << "prompt " << i << " of " << prompts[i].size();
    EXPECT_EQ(got[i][0].finish_reason, want.size() < 48 ? "stop" : "length");
    lengths.insert(got[i][0].token_ids.size());
  }
  const auto& stats = engine.stats();
  std::printf(
      "%zu prompts, %lld steps, %lld prompt + %lld generated tokens, %zu lengths, %lld "
      "preemptions (%lld tokens recomputed)\n",
      prompts.size(), static_cast<long long>(stats.steps),
      static_cast<long long>(stats.prompt_tokens), static_cast<long long>(stats.generated_tokens),
      lengths.size(), static_cast<long long>(stats.preemptions),
      static_cast<long long>(stats.recomputed_tokens));
  int64_t prompt_tokens = 0;
  for (const auto& p : prompts)
    prompt_tokens += std::ssize(p);
  EXPECT_EQ(stats.prompt_tokens, prompt_tokens);  // recomputation is counted apart
  if (kv_blocks > 0) {
    EXPECT_GT(stats.preemptions, 0);
    EXPECT_GT(stats.recomputed_tokens, 0);
  } else {
    EXPECT_EQ(stats.preemptions, 0);
  }
}

TEST(Engine, GreedyMatchesFullRecomputationOnLlamaTiny) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  expect_greedy_matches_recompute(load_causal_lm(tiny_dir()));
}

TEST(Engine, GreedyMatchesFullRecomputationOnStories260K) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  expect_greedy_matches_recompute(load_causal_lm(stories_dir()));
}

// Decode steps at the fixed shapes CUDA graphs capture (rows padded to a bucket, the first
// key-bucket positions of the tables attended under the mask), run eagerly here: the same
// continuations. With blocks of 4 tokens the key buckets are 64, 128 and 160 positions, which
// the sequences cross as they grow (and the blocks are stored as the GPU stores them: 4 is no
// multiple of the CPU kernels' 16).
TEST(Engine, FixedShapeDecodeStepsMatchFullRecomputation) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  expect_greedy_matches_recompute(load_causal_lm(stories_dir()), /*fixed_shape=*/true);
  expect_greedy_matches_recompute(load_causal_lm(stories_dir()), true, 0, /*block_tokens=*/4);
}

// 12 blocks of 16 tokens hold one 110-token prompt and its 48 new tokens, and little beside:
// sequences run out of blocks mid-decode, are preempted and recomputed, on every path (fused
// CPU steps, composed, fixed shapes); the continuations are still the full recomputation's.
TEST(Engine, PreemptedSequencesContinueExactly) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  expect_greedy_matches_recompute(load_causal_lm(stories_dir()), false, /*kv_blocks=*/12);
  expect_greedy_matches_recompute(load_causal_lm(stories_dir()), /*fixed_shape=*/true, 12);
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  expect_greedy_matches_recompute(load_causal_lm(tiny_dir()), false, 12);
}

// Requests of n = 2 greedy samples under a small step budget and few places: prompts go in
// chunks while their second sample waits for the fork, sequences finish at different times;
// and again with KV memory so small that forked samples are preempted and recomputed alone.
// Every sample still equals the full recomputation.
TEST(Engine, ForkedSamplesStayExactUnderPreemption) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  auto model = load_causal_lm(stories_dir());
  const auto prompts = prompts_of({3, 40, 2, 57, 9, 31}, model->config().vocab_size);
  EngineOptions options;
  options.max_num_seqs = 5;
  options.max_step_tokens = 12;
  options.max_seq_len = 100;
  std::vector<Request> requests;
  std::vector<int64_t> lengths = {5, 30, 12, 20, 3, 25};  // different finishing times
  for (size_t i = 0; i < prompts.size(); ++i) {
    Request r;
    r.prompt = prompts[i];
    r.sampling.temperature = 0;
    r.max_new_tokens = lengths[i];
    r.n = 2;
    requests.push_back(r);
  }
  for (const int64_t blocks : {0, 8}) {
    options.kv_blocks = blocks;
    Engine engine(model, options);
    const auto got = engine.generate(requests);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto want = greedy_by_recompute(model, prompts[i], lengths[i], {});
      ASSERT_EQ(got[i].size(), 2u);
      EXPECT_EQ(got[i][0].token_ids, want) << "request " << i << ", sample 0, blocks " << blocks;
      EXPECT_EQ(got[i][1].token_ids, want) << "request " << i << ", sample 1, blocks " << blocks;
    }
    EXPECT_EQ(engine.stats().prompt_tokens, 3 + 40 + 2 + 57 + 9 + 31);  // each prompt once
    EXPECT_EQ(engine.stats().preemptions > 0, blocks > 0);
  }
}

// A sliding-window model (Mistral): every engine token attends only the window, as the full
// forward's mask says; prompts and continuations longer than the window.
TEST(Engine, SlidingWindowMatchesFullRecomputation) {
  ModelConfig config;
  config.vocab_size = 97;
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 8;
  config.max_position_embeddings = 256;
  config.sliding_window = 12;
  LlamaForCausalLM model(config);
  init_weights(*model, 0.3, 7);  // large weights: attention far from uniform
  expect_greedy_matches_recompute(model);
  expect_greedy_matches_recompute(model, /*fixed_shape=*/true);
}

// The fused CPU decode step (rollout/cpu_decode_step.h) against the composed forward over the
// same KV blocks: rows at very different positions, each in blocks scattered over the memory
// (tables padded with the scratch block), for head sizes of each of its kernels (8, and
// multiples of 16), grouped-query attention (query heads a KV head taken 4, 2 and 1 at a time),
// biases and a sliding window; all rows at once, and a few at a time (another product kernel).
// The logits and the keys and values written agree to float32 rounding. The composed forward's
// rows also take the CPU attention kernel (rollout/cpu_attention.h) unless told not to: that
// path and the gathered SDPA one are compared too.
TEST(Engine, FusedCpuDecodeStepMatchesTheComposedForward) {
  struct Variant {
    int64_t head_dim, heads, kv_heads;
    bool biases;
    std::optional<int64_t> window;
  };
  for (const auto& v :
       {Variant{8, 4, 2, false, {}}, Variant{16, 4, 1, true, 9}, Variant{64, 2, 2, false, {}},
        Variant{16, 6, 1, false, {}}, Variant{8, 3, 1, false, 9}}) {
    ModelConfig config;
    config.vocab_size = 131;
    config.hidden_size = 48;
    config.intermediate_size = 72;
    config.num_hidden_layers = 2;
    config.num_attention_heads = v.heads;
    config.num_key_value_heads = v.kv_heads;
    config.head_dim = v.head_dim;
    config.max_position_embeddings = 96;
    config.qkv_bias = config.o_bias = config.mlp_bias = v.biases;
    config.sliding_window = v.window;
    LlamaForCausalLM model(config);
    init_weights(*model, 0.3, 11);
    if (!CpuDecodeStep::applies(model)) GTEST_SKIP() << "this CPU has no AVX-512";
    const c10::InferenceMode inference;
    // 70 rows, so that each thread's block spans several column vectors.
    constexpr int64_t kB = 16, kL = 96, kT = kL / kB;
    std::vector<int64_t> lengths;
    for (int64_t r = 0; r < 70; ++r)
      lengths.push_back(1 + (r * 37) % 70);
    const auto rows = std::ssize(lengths);
    const auto prompts = prompts_of(lengths, config.vocab_size);
    // Block j of every row before block j + 1 of any: each row's blocks lie far apart.
    std::vector<std::vector<int64_t>> tables(static_cast<size_t>(rows));
    int64_t next_block = 0;
    for (int64_t j = 0; j < kT; ++j) {
      for (int64_t r = 0; r < rows; ++r) {
        if (j * kB <= lengths[static_cast<size_t>(r)])
          tables[static_cast<size_t>(r)].push_back(next_block++);
      }
    }
    std::vector<int64_t> flat;
    for (const auto& t : tables) {
      flat.insert(flat.end(), t.begin(), t.end());
      flat.resize(flat.size() + static_cast<size_t>(kT) - t.size(), next_block);  // scratch
    }
    // Each row's prompt into its blocks; then one decode step of every row.
    const auto prefilled = [&](LlamaForCausalLM& m, torch::Dtype dtype) {
      KVBlocks kv(config, next_block, kB, kL, torch::TensorOptions().dtype(dtype));
      for (int64_t r = 0; r < rows; ++r) {
        const auto& p = prompts[static_cast<size_t>(r)];
        std::vector<int64_t> positions(p.size());
        std::iota(positions.begin(), positions.end(), 0);
        block_forward(m, kv, p, positions, 0, {}, 1,
                      {{tables[static_cast<size_t>(r)], 0, std::ssize(p), 0}});
      }
      return kv;
    };
    std::vector<int64_t> ids, positions;
    for (int64_t r = 0; r < rows; ++r) {
      ids.push_back(3 + r);
      positions.push_back(lengths[static_cast<size_t>(r)]);
    }
    auto composed_kv = prefilled(model, torch::kFloat32);
    const auto composed =
        model->logits(block_forward(model, composed_kv, ids, positions, rows, flat, 71, {}));
    auto fused_kv = prefilled(model, torch::kFloat32);
    CpuDecodeStep step(model, fused_kv);
    // run() returns its own buffer, which the next run overwrites: hence the clones.
    const auto threads = at::get_num_threads();
    at::set_num_threads(2);
    const auto fused = step.run(ids, positions, flat).clone();
    // The same step again on one thread (it rewrites the same keys and values): the split of
    // rows among threads changes nothing, bit for bit, while each thread has more rows than
    // take the few-row products (35 here).
    at::set_num_threads(1);
    const auto alone = step.run(ids, positions, flat).clone();
    // The same rows 1 to 6 at a time: the few-row products sum in another order than the
    // tiles, so these agree with the others to float32 rounding, not bit for bit.
    std::vector<torch::Tensor> parts;
    for (int64_t r0 = 0, n = 1; r0 < rows; r0 += n, n = n % 6 + 1) {
      const int64_t r1 = std::min(rows, r0 + n);
      parts.push_back(step.run({ids.begin() + r0, ids.begin() + r1},
                               {positions.begin() + r0, positions.begin() + r1},
                               {flat.begin() + r0 * kT, flat.begin() + r1 * kT})
                          .clone());
    }
    const auto few = torch::cat(parts);
    at::set_num_threads(threads);
    // The composed forward's rows through the gathered SDPA call instead of the CPU kernel.
    auto gathered_kv = prefilled(model, torch::kFloat32);
    torch::Tensor gathered;
    {
      const auto device_ints = [](const std::vector<int64_t>& x) {
        return torch::tensor(x, torch::kInt64);
      };
      BlockAttention attention(gathered_kv, device_ints(positions),
                               device_ints(flat).view({rows, kT}), 71, {}, config.sliding_window,
                               /*allow_fused=*/false);
      gathered = model->logits(model->model->forward(
          DecoderInput(device_ints(ids).view({1, -1}), device_ints(positions).view({1, -1}), {},
                       &attention))[0]);
    }
    const double diff = (fused - composed).abs().max().item<double>();
    const double few_diff = (few - composed).abs().max().item<double>();
    const double gathered_diff = (gathered - composed).abs().max().item<double>();
    std::printf(
        "head_dim %lld: fused vs composed logits max |diff| %.3g, a few rows at a time %.3g, "
        "gathered vs composed %.3g (logits up to %.3g)\n",
        static_cast<long long>(v.head_dim), diff, few_diff, gathered_diff,
        composed.abs().max().item<double>());
    EXPECT_LT(diff, 1e-4) << "head_dim " << v.head_dim;
    EXPECT_LT(few_diff, 1e-4) << "head_dim " << v.head_dim;
    EXPECT_LT(gathered_diff, 1e-4) << "head_dim " << v.head_dim;
    EXPECT_TRUE(torch::equal(fused, alone)) << "head_dim " << v.head_dim;
    // Both float32 paths against the same model in float64: neither rounds more than the other.
    {
      LlamaForCausalLM m64(config);
      init_weights(*m64, 0.3, 11);
      m64->to(torch::kFloat64);
      auto kv64 = prefilled(m64, torch::kFloat64);
      const auto exact = m64->logits(block_forward(m64, kv64, ids, positions, rows, flat, 71, {}));
      const auto error = [&](const torch::Tensor& t) {
        return (t.to(torch::kFloat64) - exact).abs().max().item<double>();
      };
      const double composed_error = error(composed);
      std::printf("  vs float64: fused %.3g, a few rows at a time %.3g, composed %.3g\n",
                  error(fused), error(few), composed_error);
      EXPECT_LT(error(fused), 2 * composed_error + 1e-6) << "head_dim " << v.head_dim;
      EXPECT_LT(error(few), 2 * composed_error + 1e-6) << "head_dim " << v.head_dim;
    }
    // Every block but the scratch one (which nobody reads) holds the same keys and values.
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      for (auto* kv : {&fused_kv, &gathered_kv}) {
        EXPECT_LT(
            (composed_kv.keys(l).narrow(1, 0, next_block) - kv->keys(l).narrow(1, 0, next_block))
                .abs()
                .max()
                .item<double>(),
            3e-5);
        EXPECT_LT((composed_kv.values(l).narrow(1, 0, next_block) -
                   kv->values(l).narrow(1, 0, next_block))
                      .abs()
                      .max()
                      .item<double>(),
                  3e-5);
      }
    }
  }
}

// At temperature 1 with no other stage the two log-prob kinds coincide, and both equal the
// trainer's sequence_logps of the same sequences (a full forward) within 1e-5.
TEST(Engine, LogProbsEqualTheTrainersFullForward) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto model = load_causal_lm(tiny_dir());
  const auto prompts = prompts_of({5, 40, 12}, model->config().vocab_size);
  Engine engine(model, {});
  std::vector<Request> requests;
  for (const auto& p : prompts) {
    Request r;
    r.prompt = p;
    r.max_new_tokens = 24;
    r.n = 2;
    r.seed = 9;
    requests.push_back(r);
  }
  const auto got = engine.generate(requests);
  double worst = 0;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < prompts.size(); ++i) {
    for (const auto& c : got[i]) {
      auto ids = prompts[i];
      ids.insert(ids.end(), c.token_ids.begin(), c.token_ids.end());
      const auto input = torch::tensor(ids, torch::kInt64).view({1, -1});
      auto labels = input.clone();
      labels.narrow(1, 0, static_cast<int64_t>(prompts[i].size())).fill_(kIgnoreIndex);
      const auto lp = losses::sequence_logps(model->forward({input}), labels).token_logps[0];
      const auto tail = lp.narrow(0, static_cast<int64_t>(prompts[i].size()) - 1,
                                  static_cast<int64_t>(c.token_ids.size()));
      for (size_t t = 0; t < c.token_ids.size(); ++t) {
        const double want = tail[static_cast<int64_t>(t)].item<double>();
        worst = std::max(worst, std::abs(c.model_logprobs[t] - want));
        EXPECT_NEAR(c.logprobs[t], c.model_logprobs[t], 1e-6);
      }
    }
  }
  std::printf("engine vs trainer log-probs: max |diff| %.3g\n", worst);
  EXPECT_LT(worst, 1e-5);
}

// A request's samples come from its own generators: alone or among others, the same tokens.
// (The logits of a row differ between the two runs only by float rounding, ~1e-6, which could
// flip a draw only if it fell that close to a boundary of the cumulative distribution.)
TEST(Engine, SamplesDoNotDependOnTheBatch) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto model = load_causal_lm(tiny_dir());
  const auto prompts = prompts_of({9, 50, 3, 21}, model->config().vocab_size);
  std::vector<Request> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Request r;
    r.prompt = prompts[i];
    r.sampling.top_p = 0.9;
    r.max_new_tokens = 20;
    r.id = static_cast<int64_t>(i);
    requests.push_back(r);
  }
  Engine engine(model, {});
  const auto together = engine.generate(requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto alone = engine.generate({requests[i]});
    EXPECT_EQ(alone[0][0].token_ids, together[i][0].token_ids) << "request " << i;
  }
}

// n samples of one prompt: its tokens go through the model once; the samples differ.
TEST(Engine, SamplesOfOnePromptShareItsPrefill) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto model = load_causal_lm(tiny_dir());
  Engine engine(model, {});
  Request r;
  r.prompt = prompts_of({70}, model->config().vocab_size)[0];
  r.n = 4;
  r.max_new_tokens = 16;
  const auto got = engine.generate({r});
  ASSERT_EQ(got[0].size(), 4u);
  EXPECT_EQ(engine.stats().prompt_tokens, 70);
  std::set<std::vector<int64_t>> distinct;
  for (const auto& c : got[0])
    distinct.insert(c.token_ids);
  EXPECT_GT(distinct.size(), 1u);
}

TEST(Engine, StopStringsMatchAcrossTokenBoundaries) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  auto model = load_causal_lm(stories_dir());
  const auto tokenizer = Tokenizer::from_dir(stories_dir());
  Engine engine(model, {}, &tokenizer);
  Request r;
  r.prompt = tokenizer.encode("Once upon a time", /*add_bos=*/true);
  r.sampling.temperature = 0;
  r.max_new_tokens = 40;
  const auto plain = engine.generate({r})[0][0];
  // A stop string made of the end of one token and the start of the next.
  const auto& ids = plain.token_ids;
  ASSERT_GT(ids.size(), 12u);
  const auto before = tokenizer.decode({ids.begin(), ids.begin() + 8});
  const auto through = tokenizer.decode({ids.begin(), ids.begin() + 9});
  ASSERT_GT(through.size(), before.size() + 1);
  ASSERT_GE(before.size(), 2u);
  const std::string stop = before.substr(before.size() - 2) + through.substr(before.size(), 1);
  const auto at = plain.text.find(stop);
  ASSERT_NE(at, std::string::npos);
  r.stop_strings = {"no such text", stop};
  const auto cut = engine.generate({r})[0][0];
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.stop, stop);
  EXPECT_EQ(cut.text, plain.text.substr(0, at));
  EXPECT_LT(cut.token_ids.size(), ids.size());
}

TEST(Engine, MinNewTokensHoldsBackStopTokens) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto model = load_causal_lm(tiny_dir());
  Engine engine(model, {});
  Request r;
  r.prompt = prompts_of({6}, model->config().vocab_size)[0];
  r.sampling.temperature = 0;
  r.max_new_tokens = 8;
  const auto first = engine.generate({r})[0][0].token_ids[0];
  r.stop_ids = {first};  // greedy would stop at once
  const auto stopped = engine.generate({r})[0][0];
  EXPECT_EQ(stopped.token_ids, std::vector<int64_t>{first});
  EXPECT_EQ(stopped.finish_reason, "stop");
  r.min_new_tokens = 3;
  const auto held = engine.generate({r})[0][0];
  ASSERT_GE(held.token_ids.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NE(held.token_ids[i], first);
}

TEST(Engine, BadRequestsAreUserErrors) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  auto model = load_causal_lm(tiny_dir());
  EngineOptions options;
  options.max_seq_len = 64;
  Engine engine(model, options);
  Request r;
  EXPECT_THROW(engine.generate({r}), UserError);  // empty prompt
  r.prompt = std::vector<int64_t>(60, 5);
  r.max_new_tokens = 10;  // 70 > 64
  EXPECT_THROW(engine.generate({r}), UserError);
  r.prompt = {5, 300};  // outside the vocabulary of 300
  EXPECT_THROW(engine.generate({r}), UserError);
  r.prompt = {5};
  r.stop_strings = {"x"};  // no tokenizer
  EXPECT_THROW(engine.generate({r}), UserError);
  options.kv_cache_mb = 0;
  EXPECT_THROW(Engine(model, options), UserError);
  r.stop_strings.clear();
  r.stop_ids = std::vector<int64_t>(300);  // every id of the vocabulary of 300
  std::iota(r.stop_ids.begin(), r.stop_ids.end(), 0);
  r.min_new_tokens = 1;  // nothing left to draw
  EXPECT_THROW(engine.generate({r}), UserError);
  options.kv_cache_fraction = 1.5;
  EXPECT_THROW(Engine(model, options), UserError);
  // A fraction of the device's free memory (on the CPU, of MemAvailable) sizes the blocks.
  options.kv_cache_fraction = 0.01;
  EXPECT_GE(Engine(model, options).kv_blocks(), 4);
  // A request that does not fit the KV memory alone could never finish: refused.
  options.kv_cache_fraction = 0;
  options.kv_blocks = 4;  // 64 tokens
  options.kv_block_tokens = 16;
  Engine small(model, options);
  r = Request();
  r.prompt = std::vector<int64_t>(40, 5);
  r.max_new_tokens = 20;
  EXPECT_NO_THROW(small.validate(r));
  r.max_new_tokens = 24;  // 64 tokens hold 40 + 24, but not with room for 3 copies of ...
  r.n = 4;                // ... the prompt's last block for the other samples: 3 + 3 > 4
  EXPECT_THROW(small.validate(r), UserError);
}

// The trainer's model in bfloat16 generates as it is (no float32 copy): its engine log-probs
// agree with the bfloat16 trainer forward to bfloat16's precision (its logits here are 4-8 in
// size, where one bfloat16 step is 1/32: the bound allows about three).
TEST(Engine, Bfloat16ModelGeneratesWithItsOwnWeights) {
  FLYWHEEL_REQUIRE_PATH(tiny_dir());
  LoadOptions bf16;
  bf16.dtype = torch::kBFloat16;
  auto model = load_causal_lm(tiny_dir(), bf16);
  Engine engine(model, {});
  Request r;
  r.prompt = prompts_of({12}, model->config().vocab_size)[0];
  r.max_new_tokens = 16;
  r.seed = 3;
  const auto got = engine.generate({r})[0][0];
  ASSERT_EQ(got.token_ids.size(), 16u);
  auto ids = r.prompt;
  ids.insert(ids.end(), got.token_ids.begin(), got.token_ids.end());
  const auto input = torch::tensor(ids, torch::kInt64).view({1, -1});
  auto labels = input.clone();
  labels.narrow(1, 0, 12).fill_(kIgnoreIndex);
  torch::NoGradGuard no_grad;
  const auto want = losses::sequence_logps(model->forward({input}), labels).token_logps[0];
  double worst = 0;
  for (int64_t t = 0; t < 16; ++t)
    worst = std::max(worst, std::abs(got.model_logprobs[t] - want[11 + t].item<double>()));
  std::printf("bf16 engine vs trainer log-probs: max |diff| %.3g\n", worst);
  EXPECT_LT(worst, 0.1);
}

}  // namespace
}  // namespace flywheel
