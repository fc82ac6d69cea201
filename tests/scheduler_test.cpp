// The rollout scheduler's arithmetic without a model: token budget, decoding before prompts,
// admission first come first served as KV blocks and places free up, no room as waiting,
// chunked prompts, n samples computing their prompt once and sharing its blocks, and
// preemption when a decoding sequence finds no free block.
#include <gtest/gtest.h>

#include <set>

#include "rollout/scheduler.h"

namespace flywheel {
namespace {

// KV blocks of 4 tokens of a one-layer, one-head model with a head dim of 1: the scheduler
// only counts (and copies blocks when it forks).
KVBlocks tiny_blocks(int64_t blocks) {
  ModelConfig config;
  config.num_hidden_layers = 1;
  config.num_key_value_heads = 1;
  config.head_dim = 1;
  return KVBlocks(config, blocks, /*block_tokens=*/4, /*max_seq_len=*/64,
                  torch::TensorOptions().dtype(torch::kFloat32));
}

// The step's spans as (sequence, start, count).
using Spans = std::vector<std::array<int64_t, 3>>;
Spans spans_of(const Scheduler::Step& step) {
  Spans out;
  for (const auto& span : step.spans)
    out.push_back({static_cast<int64_t>(span.seq), span.start, span.count});
  return out;
}

// Runs a step as the engine would: every sampler draws one token.
std::vector<Scheduler::Sampling> run(Scheduler& s, const Scheduler::Step& step) {
  const auto samplers = s.computed(step);
  for (const auto& x : samplers)
    s.sampled(x.seq);
  return samplers;
}

// Blocks held by the sequences, each counted once however many share it.
int64_t held(const Scheduler& s, size_t sequences) {
  std::set<int64_t> blocks;
  for (size_t k = 0; k < sequences; ++k)
    blocks.insert(s.seq(k).blocks.begin(), s.seq(k).blocks.end());
  return std::ssize(blocks);
}

TEST(Scheduler, DecodesFirstThenPrefillsWithinTheBudgetInChunks) {
  auto blocks = tiny_blocks(16);
  Scheduler s(blocks, /*max_step_tokens=*/8, /*max_running=*/4);
  s.add(5, 1);   // request 0: sequence 0
  s.add(12, 1);  // request 1: sequence 1
  auto step = s.next();
  // Request 0's prompt whole, then 3 of request 1's 12 tokens; both prompts' blocks taken.
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 5}, {1, 0, 3}}));
  EXPECT_EQ(s.seq(0).blocks.size(), 2u);
  EXPECT_EQ(s.seq(1).blocks.size(), 3u);
  auto samplers = run(s, step);
  ASSERT_EQ(samplers.size(), 1u);  // only the finished prompt samples
  EXPECT_EQ(samplers[0].seq, 0u);
  // Next: sequence 0 decodes one token, then 7 more of sequence 1's prompt.
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 5, 1}, {1, 3, 7}}));
  run(s, step);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 6, 1}, {1, 10, 2}}));
  samplers = run(s, step);
  EXPECT_EQ(samplers.size(), 2u);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 7, 1}, {1, 12, 1}}));
  // Sequence 0's token at position 8 starts its third block, taken as the step is planned.
  run(s, step);
  EXPECT_EQ(s.seq(0).blocks.size(), 2u);
  s.next();
  EXPECT_EQ(s.seq(0).blocks.size(), 3u);
  EXPECT_EQ(blocks.free_blocks(), 16 - 3 - 4);
}

TEST(Scheduler, RequestsWaitForAPlaceAndEnterAsOthersFinish) {
  auto blocks = tiny_blocks(16);
  Scheduler s(blocks, 100, /*max_running=*/2);
  for (int i = 0; i < 3; ++i)
    s.add(4, 1);
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 4}, {1, 0, 4}}));  // request 2: no place, it waits
  run(s, step);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 4, 1}, {1, 4, 1}}));
  run(s, step);
  EXPECT_EQ(blocks.free_blocks(), 12);
  s.finish(0);  // sequence 0 stops: its blocks are free, request 2 enters mid-flight
  EXPECT_EQ(blocks.free_blocks(), 14);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{1, 5, 1}, {2, 0, 4}}));
  run(s, step);
  s.finish(1);
  s.finish(2);
  EXPECT_TRUE(s.next().spans.empty());
  EXPECT_EQ(blocks.free_blocks(), 16);
}

TEST(Scheduler, RequestsWaitForBlocksFirstComeFirstServed) {
  auto blocks = tiny_blocks(3);
  Scheduler s(blocks, 100, 8);
  s.add(8, 1);  // 2 blocks
  s.add(8, 1);  // 2 blocks: 1 is free, it waits
  s.add(2, 1);  // 1 block would do, but it does not jump the queue
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 8}}));
  EXPECT_EQ(blocks.free_blocks(), 1);
  run(s, step);
  s.finish(0);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{1, 0, 8}, {2, 0, 2}}));
  EXPECT_EQ(blocks.free_blocks(), 0);
}

TEST(Scheduler, AdmissionIsFirstComeFirstServed) {
  auto blocks = tiny_blocks(16);
  Scheduler s(blocks, 100, /*max_running=*/3);
  s.add(3, 3);  // needs all three places
  s.add(3, 1);
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 3}}));  // request 1 does not jump the queue
  run(s, step);
  s.finish(0);
  // One place is free, and request 1 is next: it enters.
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{1, 3, 1}, {2, 3, 1}, {3, 0, 3}}));
}

TEST(Scheduler, SamplesOfOnePromptComputeItOnceAndShareItsBlocks) {
  auto blocks = tiny_blocks(16);
  Scheduler s(blocks, 6, 4);
  s.add(10, 3);
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 6}}));  // the first sample only, in chunks
  // The prompt's 3 blocks, and one block each for the others' copy of its partial last block.
  EXPECT_EQ(blocks.free_blocks(), 16 - 3 - 2);
  EXPECT_TRUE(run(s, step).empty());
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 6, 4}}));
  // What the forward would have written into the last block (positions 8 and 9).
  const auto last = s.seq(0).blocks[2];
  blocks.keys(0).select(1, last).fill_(7.0f);
  const auto samplers = run(s, step);
  // The prompt is in: all three samples draw from its last position, and hold the prompt too:
  // its two full blocks shared, its last block copied.
  ASSERT_EQ(samplers.size(), 3u);
  for (size_t j = 0; j < 3; ++j) {
    EXPECT_EQ(samplers[j].seq, j);
    EXPECT_EQ(samplers[j].span, 0u);
    EXPECT_EQ(s.seq(j).cached, 10);
    ASSERT_EQ(s.seq(j).blocks.size(), 3u);
    EXPECT_EQ(s.seq(j).blocks[0], s.seq(0).blocks[0]);
    EXPECT_EQ(s.seq(j).blocks[1], s.seq(0).blocks[1]);
    EXPECT_TRUE(torch::all(blocks.keys(0).select(1, s.seq(j).blocks[2]) == 7.0f).item<bool>());
  }
  EXPECT_NE(s.seq(1).blocks[2], last);
  EXPECT_EQ(held(s, 3), 5);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 10, 1}, {1, 10, 1}, {2, 10, 1}}));
  // A shared block is free only when its last holder finishes.
  run(s, step);
  s.finish(0);
  s.finish(1);
  EXPECT_EQ(blocks.free_blocks(), 16 - 3);
  s.finish(2);
  EXPECT_EQ(blocks.free_blocks(), 16);
}

TEST(Scheduler, DecodingAndANewPromptShareTheBudget) {
  auto blocks = tiny_blocks(16);
  Scheduler s(blocks, 4, 4);
  for (int i = 0; i < 4; ++i)
    s.add(1, 1);
  run(s, s.next());  // four one-token prompts
  s.finish(0);
  s.add(2, 1);
  const auto step = s.next();
  // Three decoding tokens fill 3 of 4; the new prompt gets the last one.
  EXPECT_EQ(spans_of(step), (Spans{{1, 1, 1}, {2, 1, 1}, {3, 1, 1}, {4, 0, 1}}));
}

// Runs steps until sequence `k` has `tokens` known, every sequence drawing a token when it may.
void run_until(Scheduler& s, size_t k, int64_t tokens) {
  while (s.seq(k).known < tokens)
    run(s, s.next());
}

TEST(Scheduler, ADecodingSequenceWithoutABlockPreemptsTheLastAdmitted) {
  auto blocks = tiny_blocks(5);
  Scheduler s(blocks, 100, 4);
  s.add(8, 1);  // sequence 0: 2 blocks
  s.add(4, 1);  // sequence 1: 1 block
  run(s, s.next());
  // Position 8 of sequence 0 and position 4 of sequence 1 each start a block: 0 left.
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 8, 1}, {1, 4, 1}}));
  EXPECT_EQ(blocks.free_blocks(), 0);
  run(s, step);
  run_until(s, 0, 13);
  // Position 12 needs a fourth block: sequence 1, admitted last, gives up its two.
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 12, 1}}));
  EXPECT_EQ(s.preemptions(), 1);
  EXPECT_EQ(s.seq(1).preemptions, 1);
  EXPECT_EQ(s.seq(1).cached, 0);
  EXPECT_TRUE(s.seq(1).blocks.empty());
  EXPECT_EQ(s.seq(1).known, 9);  // what it generated stays
  EXPECT_EQ(blocks.free_blocks(), 1);
  run(s, step);
  // A new request waits behind the preempted sequence, though a block is free for it.
  s.add(2, 1);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 13, 1}}));
  run(s, step);
  s.finish(0);
  // Sequence 1 comes back first: its 9 tokens in one prefill, then it draws the 10th.
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{1, 0, 9}, {2, 0, 2}}));
  const auto samplers = run(s, step);
  ASSERT_EQ(samplers.size(), 2u);
  EXPECT_EQ(samplers[0].seq, 1u);
  EXPECT_EQ(s.seq(1).known, 10);
  EXPECT_EQ(spans_of(s.next()), (Spans{{1, 9, 1}, {2, 2, 1}}));
}

TEST(Scheduler, TheLastAdmittedPreemptsItself) {
  auto blocks = tiny_blocks(3);
  Scheduler s(blocks, 100, 4);
  s.add(7, 1);  // sequence 0: 2 blocks, room up to position 7
  s.add(4, 1);  // sequence 1: 1 block
  run(s, s.next());
  // Sequence 1's position 4 starts a block and none is free; it was admitted last, so it is
  // the one to go, and sequence 0 decodes on.
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 7, 1}}));
  EXPECT_EQ(s.seq(1).preemptions, 1);
  EXPECT_EQ(blocks.free_blocks(), 1);
  run(s, step);
  // Sequence 0's position 8 takes the block sequence 1 left; sequence 1 (5 tokens, 2 blocks)
  // waits until sequence 0 finishes.
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 8, 1}}));
  EXPECT_EQ(blocks.free_blocks(), 0);
  run(s, step);
  s.finish(0);
  EXPECT_EQ(spans_of(s.next()), (Spans{{1, 0, 5}}));
  EXPECT_EQ(held(s, 2), 2);
}

TEST(Scheduler, SamplesWaitingForTheirPromptAreNotPreempted) {
  auto blocks = tiny_blocks(4);
  Scheduler s(blocks, 4, 4);
  s.add(3, 1);  // sequence 0: 1 block
  s.add(6, 2);  // sequences 1, 2: 2 blocks for the prompt, 1 for sample 2's copy
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 3}, {1, 0, 1}}));
  EXPECT_EQ(blocks.free_blocks(), 0);
  run(s, step);
  // Sequence 0's position 3 fits its block; position 4 needs another, none is free, and the
  // request admitted after it is still computing its prompt: sequence 0 goes itself (and
  // cannot come back while the other request holds the blocks).
  run(s, s.next());
  step = s.next();
  EXPECT_EQ(s.seq(0).preemptions, 1);
  EXPECT_EQ(s.seq(1).preemptions + s.seq(2).preemptions, 0);
  EXPECT_EQ(spans_of(step), (Spans{{1, 4, 2}}));
  const auto samplers = run(s, step);
  EXPECT_EQ(samplers.size(), 2u);  // the prompt is in; both samples draw
}

}  // namespace
}  // namespace flywheel
