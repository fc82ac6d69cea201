// The rollout scheduler's arithmetic without a model: token budget, decoding before prompts,
// admission first come first served as slots free up, no room as waiting, chunked prompts,
// and n samples computing their prompt once.
#include <gtest/gtest.h>

#include "rollout/scheduler.h"

namespace flywheel {
namespace {

// KV slots of a one-layer, one-head model with a head dim of 1: the scheduler only counts.
KVSlots tiny_slots(int64_t slots) {
  ModelConfig config;
  config.num_hidden_layers = 1;
  config.num_key_value_heads = 1;
  config.head_dim = 1;
  return KVSlots(config, slots, /*slot_length=*/64, torch::TensorOptions().dtype(torch::kFloat32));
}

// The step's spans as (sequence, start, count).
std::vector<std::array<int64_t, 3>> spans_of(const Scheduler::Step& step) {
  std::vector<std::array<int64_t, 3>> out;
  for (size_t i = 0; i < step.spans.size(); ++i) {
    out.push_back({static_cast<int64_t>(step.seqs[i]), step.spans[i].start, step.spans[i].count});
  }
  return out;
}

// Runs a step as the engine would: every sampler draws one token.
std::vector<Scheduler::Sampling> run(Scheduler& s, const Scheduler::Step& step) {
  const auto samplers = s.computed(step);
  for (const auto& x : samplers)
    s.sampled(x.seq);
  return samplers;
}

using Spans = std::vector<std::array<int64_t, 3>>;

TEST(Scheduler, DecodesFirstThenPrefillsWithinTheBudgetInChunks) {
  auto slots = tiny_slots(4);
  Scheduler s(slots, /*max_step_tokens=*/8);
  s.add(5, 1);   // request 0: sequence 0
  s.add(12, 1);  // request 1: sequence 1
  auto step = s.next();
  // Request 0's prompt whole, then 3 of request 1's 12 tokens.
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 5}, {1, 0, 3}}));
  EXPECT_EQ(step.spans[1].offset, 5);
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
}

TEST(Scheduler, RequestsWaitForSlotsAndEnterAsOthersFinish) {
  auto slots = tiny_slots(2);
  Scheduler s(slots, 100);
  for (int i = 0; i < 3; ++i)
    s.add(4, 1);
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 4}, {1, 0, 4}}));  // request 2: no room, it waits
  EXPECT_EQ(slots.free_slots(), 0);
  run(s, step);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 4, 1}, {1, 4, 1}}));
  run(s, step);
  s.finish(0);  // sequence 0 stops: sequence 1 moves down, request 2 enters mid-flight
  EXPECT_EQ(s.seq(1).slot, 0);
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{1, 5, 1}, {2, 0, 4}}));
  EXPECT_EQ(s.seq(2).slot, 1);
  run(s, step);
  s.finish(1);
  s.finish(2);
  EXPECT_TRUE(s.next().spans.empty());
  EXPECT_EQ(slots.free_slots(), 2);
}

TEST(Scheduler, AdmissionIsFirstComeFirstServed) {
  auto slots = tiny_slots(3);
  Scheduler s(slots, 100);
  s.add(3, 3);  // needs all three slots
  s.add(3, 1);
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 3}}));  // request 1 does not jump the queue
  run(s, step);
  s.finish(0);
  // One slot is free, but request 1 comes after no one now: it enters.
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{1, 3, 1}, {2, 3, 1}, {3, 0, 3}}));
}

TEST(Scheduler, SamplesOfOnePromptComputeItOnce) {
  auto slots = tiny_slots(4);
  Scheduler s(slots, 6);
  s.add(10, 3);
  auto step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 0, 6}}));  // the first sample only, in chunks
  EXPECT_TRUE(run(s, step).empty());
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 6, 4}}));
  const auto samplers = run(s, step);
  // The prompt is in: all three samples draw from its last position, the others' slots
  // hold the prompt too.
  ASSERT_EQ(samplers.size(), 3u);
  for (size_t j = 0; j < 3; ++j) {
    EXPECT_EQ(samplers[j].seq, j);
    EXPECT_EQ(samplers[j].span, 0u);
    EXPECT_EQ(s.seq(j).cached, 10);
  }
  step = s.next();
  EXPECT_EQ(spans_of(step), (Spans{{0, 10, 1}, {1, 10, 1}, {2, 10, 1}}));
}

TEST(Scheduler, DecodingAndANewPromptShareTheBudget) {
  auto slots = tiny_slots(4);
  Scheduler s(slots, 4);
  for (int i = 0; i < 4; ++i)
    s.add(1, 1);
  run(s, s.next());  // four one-token prompts
  s.finish(0);
  s.add(2, 1);
  const auto step = s.next();
  // Three decoding tokens fill 3 of 4; the new prompt gets the last one.
  EXPECT_EQ(spans_of(step), (Spans{{1, 1, 1}, {2, 1, 1}, {3, 1, 1}, {4, 0, 1}}));
}

// A sequence leaving a low slot makes the one in the highest slot move into it, keys and
// values included, so the slots in use stay [0, used) and decoding rows stay one block.
TEST(Scheduler, FinishingCompactsTheSlotsInUse) {
  auto slots = tiny_slots(4);
  Scheduler s(slots, 100);
  for (int i = 0; i < 4; ++i)
    s.add(3, 1);
  run(s, s.next());
  run(s, s.next());  // every sequence has 4 tokens cached, in slots 0..3
  for (int64_t slot = 0; slot < 4; ++slot)
    slots.keys(0)[slot].narrow(1, 0, 4).fill_(static_cast<float>(slot + 1));
  s.finish(1);
  EXPECT_EQ(s.seq(3).slot, 1);  // the highest moved into the hole
  EXPECT_EQ(s.seq(0).slot, 0);
  EXPECT_EQ(s.seq(2).slot, 2);
  EXPECT_EQ(slots.free_slots(), 1);
  EXPECT_TRUE(torch::all(slots.keys(0)[1].narrow(1, 0, 4) == 4.0f).item<bool>());
  s.finish(2);  // already the highest in use: nothing moves
  EXPECT_EQ(s.seq(3).slot, 1);
  const auto step = s.next();
  std::vector<int64_t> used;
  for (const auto& span : step.spans)
    used.push_back(span.slot);
  EXPECT_EQ(used, (std::vector<int64_t>{0, 1}));
  // A new request takes the lowest free slot.
  s.add(2, 1);
  run(s, step);
  s.next();
  EXPECT_EQ(s.seq(4).slot, 2);
}

}  // namespace
}  // namespace flywheel
