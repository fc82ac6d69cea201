// Which tokens the rollout engine's next forward computes (rollout/engine.h), and which KV
// blocks hold them (rollout/kv_blocks.h). It knows each sequence only by its counts, so it is
// tested without a model.
//
// A step: one token for every running sequence that has all but its newest token cached (in
// admission order), then the prompts in flight, then the sequences preempted earlier, then
// waiting requests, first come first served; all within the step's token budget, a prompt
// longer than what is left going in chunks, and never more than max_running sequences at
// once. A request is admitted when the blocks of its prompt are free (they are taken then, so
// a prompt in flight never runs out of room), and all its samples enter together. Only the
// first sample computes the prompt; when it is in, the others share its full blocks and copy
// the partly filled last one (fork).
//
// A decoding sequence takes a block whenever it crosses into one. When none is free, the
// sequence admitted last (after the one asking, or the one asking) that would free a block is
// preempted, else the one asking: its blocks are released and it goes back to the head of the
// queue, to be recomputed (prompt and what it generated, as one prefill) when blocks free up.
// Samples whose prompt is still being computed are never preempted; they hold only their prompt,
// which they were given on entry.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "rollout/kv_blocks.h"

namespace flywheel {

class Scheduler {
 public:
  struct Sequence {
    size_t request = 0;
    int64_t sample = 0;  // 0 computes the request's prompt
    int64_t prompt = 0;
    int64_t known = 0;   // tokens known: the prompt, then each one sampled
    int64_t cached = 0;  // tokens whose keys and values are in its blocks
    int64_t high = 0;    // the most it ever had cached (more than `cached` after preemption)
    std::vector<int64_t> blocks;  // its block table
    bool forked = false;          // a sample past 0 that holds its prompt (or was recomputed)
    bool running = false, done = false;
    int64_t preemptions = 0;
  };
  struct Span {
    size_t seq = 0;
    int64_t start = 0, count = 0;
  };
  struct Step {
    std::vector<Span> spans;
  };

  // max_running <= max_step_tokens: every running sequence can decode in every step.
  Scheduler(KVBlocks& blocks, int64_t max_step_tokens, int64_t max_running);

  // A request of n samples of a prompt of `prompt` tokens; its sequences are numbered on from
  // the last request's.
  void add(int64_t prompt, int64_t n);
  const Sequence& seq(size_t k) const { return seqs_[k]; }
  size_t first_of(size_t request) const { return first_[request]; }
  int64_t preemptions() const { return preemptions_; }
  // Nothing running, preempted or waiting: every sequence is done.
  bool idle() const { return running_.empty() && preempted_.empty() && waiting_.empty(); }

  // The next forward's spans; none once every sequence is done.
  Step next();
  // Who samples from the last position of which span.
  struct Sampling {
    size_t seq = 0;
    size_t span = 0;
  };
  // After the forward: the spans' tokens are cached. Returns the sequences that sample now
  // (every known token cached), a request's other samples after its first when its prompt
  // just came in (they then hold the prompt too, and draw from the same logits).
  std::vector<Sampling> computed(const Step& step);
  // A token was sampled for sequence k.
  void sampled(size_t k) { ++seqs_[k].known; }
  // Sequence k is finished: its blocks are released.
  void finish(size_t k);

 private:
  // Frees sequence k's blocks and puts it at the head of the queue.
  void preempt(size_t k);
  // Whether k may be preempted: it is not a sample waiting for its prompt, or the first sample
  // of a request whose other samples wait for it.
  bool preemptible(size_t k) const;
  // Takes the blocks a sequence of `tokens` tokens needs beyond what it holds; false (taking
  // none) when they are not free.
  bool reserve(Sequence& s, int64_t tokens);
  void release(Sequence& s);
  void run(size_t k);  // k joins the running sequences
  // Blocks a request needs to enter: its prompt's, and each other sample's copy of the last.
  int64_t entry_blocks(size_t request) const;

  KVBlocks& blocks_;
  int64_t max_step_tokens_, max_running_;
  std::vector<Sequence> seqs_;
  std::vector<size_t> first_;     // per request: its first sequence
  std::vector<int64_t> samples_;  // per request: n
  std::deque<size_t> waiting_;    // requests
  std::deque<size_t> preempted_;  // sequences, the one to resume first at the front
  std::vector<size_t> running_;   // sequences, in admission order
  int64_t preemptions_ = 0;
};

}  // namespace flywheel
