// Which tokens the rollout engine's next forward computes (rollout/engine.h). It knows each
// sequence only by its counts, so it is tested without a model.
//
// A step: one token for every running sequence past its prompt (in admission order), then the
// prompts in flight, then waiting requests, first come first served, each admitted only when
// all of its samples get a slot; all within the step's token budget, a prompt longer than
// what is left going in chunks. Only a request's first sample computes its prompt; when the
// prompt is in, the others copy its keys and values (fork). A slot holds a whole sequence
// (prompt + max_new_tokens), so a running sequence never runs out of room and nothing is
// preempted: no room means a request waits. When a sequence finishes, the one in the highest
// slot moves into its slot, so the slots in use stay [0, used) (rollout/kv_slots.h).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "rollout/kv_slots.h"

namespace flywheel {

class Scheduler {
 public:
  struct Sequence {
    size_t request = 0;
    int64_t sample = 0;  // 0 computes the request's prompt
    int64_t prompt = 0;
    int64_t known = 0;   // tokens known: the prompt, then each one sampled
    int64_t cached = 0;  // tokens whose keys and values are in the slot
    int64_t slot = -1;
    bool done = false;
  };
  struct Step {
    std::vector<SlotSpan> spans;
    std::vector<size_t> seqs;  // the sequence each span computes
  };

  // max_step_tokens >= slots.slots(): every running sequence decodes in every step.
  Scheduler(KVSlots& slots, int64_t max_step_tokens);

  // A request of n samples of a prompt of `prompt` tokens; its sequences are numbered on from
  // the last request's.
  void add(int64_t prompt, int64_t n);
  const Sequence& seq(size_t k) const { return seqs_[k]; }
  size_t first_of(size_t request) const { return first_[request]; }

  // The next forward's spans; none once every sequence is done.
  Step next();
  // Who samples from the last position of which span.
  struct Sampling {
    size_t seq = 0;
    size_t span = 0;
  };
  // After the forward: the spans' tokens are cached. Returns the sequences that sample now
  // (every known token cached), a request's other samples after its first when its prompt
  // just came in (their slots then hold the prompt too, and they draw from the same logits).
  std::vector<Sampling> computed(const Step& step);
  // A token was sampled for sequence k.
  void sampled(size_t k) { ++seqs_[k].known; }
  // Sequence k is finished: its slot goes to the sequence in the highest slot, if that is
  // above it, and a slot is free for waiting requests.
  void finish(size_t k);

 private:
  KVSlots& slots_;
  int64_t max_step_tokens_;
  std::vector<Sequence> seqs_;
  std::vector<size_t> first_;     // per request: its first sequence
  std::vector<int64_t> samples_;  // per request: n
  std::deque<size_t> waiting_;    // requests
  std::vector<size_t> running_;   // sequences holding a slot, in admission order
};

}  // namespace flywheel
