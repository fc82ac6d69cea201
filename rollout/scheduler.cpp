#include "rollout/scheduler.h"

#include <algorithm>

namespace flywheel {

Scheduler::Scheduler(KVBlocks& blocks, int64_t max_step_tokens, int64_t max_running)
    : blocks_(blocks), max_step_tokens_(max_step_tokens), max_running_(max_running) {
  TORCH_CHECK(max_running >= 1 && max_step_tokens >= max_running, "Scheduler: a step of ",
              max_step_tokens, " tokens cannot advance ", max_running, " sequences");
}

void Scheduler::add(int64_t prompt, int64_t n) {
  const size_t request = first_.size();
  first_.push_back(seqs_.size());
  samples_.push_back(n);
  waiting_.push_back(request);
  for (int64_t j = 0; j < n; ++j) {
    Sequence s;
    s.request = request;
    s.sample = j;
    s.prompt = s.known = prompt;
    seqs_.push_back(std::move(s));
  }
}

int64_t Scheduler::entry_blocks(size_t request) const {
  const auto& first = seqs_[first_[request]];
  const int64_t partial = first.prompt % blocks_.block_tokens() != 0 ? 1 : 0;
  return KVBlocks::blocks_for(first.prompt, blocks_.block_tokens()) +
         (samples_[request] - 1) * partial;
}

bool Scheduler::reserve(Sequence& s, int64_t tokens) {
  const auto need = KVBlocks::blocks_for(tokens, blocks_.block_tokens()) - std::ssize(s.blocks);
  if (need > blocks_.free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i)
    s.blocks.push_back(*blocks_.allocate());
  return true;
}

void Scheduler::release(Sequence& s) {
  for (auto b : s.blocks)
    blocks_.release(b);
  s.blocks.clear();
  s.running = false;
  running_.erase(
      std::find(running_.begin(), running_.end(), static_cast<size_t>(&s - seqs_.data())));
}

void Scheduler::run(size_t k) {
  seqs_[k].running = true;
  running_.push_back(k);
}

bool Scheduler::preemptible(size_t k) const {
  const auto& s = seqs_[k];
  if (s.sample > 0) return s.forked;
  const auto& last = seqs_[first_[s.request] + static_cast<size_t>(samples_[s.request]) - 1];
  return samples_[s.request] == 1 || last.forked;
}

void Scheduler::preempt(size_t k) {
  auto& s = seqs_[k];
  release(s);
  s.cached = 0;
  s.forked = true;  // from now on it computes its own tokens
  ++s.preemptions;
  ++preemptions_;
  preempted_.push_front(k);
}

Scheduler::Step Scheduler::next() {
  Step step;
  int64_t budget = max_step_tokens_;
  const auto add_span = [&](size_t k, int64_t count) {
    step.spans.push_back({k, seqs_[k].cached, count});
    budget -= count;
  };
  const auto computes = [&](const Sequence& s) { return s.sample == 0 || s.forked; };
  // Decoding sequences, each taking a block when its next token starts one.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    const size_t k = running_[i];
    auto& s = seqs_[k];
    if (!computes(s) || s.known - s.cached != 1) {
      ++i;
      continue;
    }
    if (reserve(s, s.known)) {
      add_span(k, 1);
      ++i;
      continue;
    }
    // No room: the last sequence admitted (from k on: the ones before keep their spans) that
    // may go and would free a block goes; if none would (later samples holding only blocks
    // their siblings share), k itself steps aside rather than preempting them for nothing.
    size_t victim = i;
    for (size_t j = running_.size(); j-- > i;) {
      const auto& held = seqs_[running_[j]].blocks;
      if (preemptible(running_[j]) && std::any_of(held.begin(), held.end(), [&](int64_t b) {
            return blocks_.holders(b) == 1;
          })) {
        victim = j;
        break;
      }
    }
    preempt(running_[victim]);
  }
  // Prompts in flight, and recomputed sequences, in chunks: their blocks are theirs already.
  for (auto k : running_) {
    const auto& s = seqs_[k];
    if (budget == 0) break;
    if (computes(s) && s.known - s.cached > 1) add_span(k, std::min(s.known - s.cached, budget));
  }
  // Preempted sequences come back first, then waiting requests, as long as blocks allow.
  while (!preempted_.empty() && budget > 0 && std::ssize(running_) < max_running_) {
    const size_t k = preempted_.front();
    if (!reserve(seqs_[k], seqs_[k].known)) break;
    preempted_.pop_front();
    run(k);
    add_span(k, std::min(seqs_[k].known, budget));
  }
  while (preempted_.empty() && !waiting_.empty() && budget > 0) {
    const size_t r = waiting_.front();
    if (std::ssize(running_) + samples_[r] > max_running_ ||
        entry_blocks(r) > blocks_.free_blocks()) {
      break;  // no room: it waits
    }
    waiting_.pop_front();
    auto& first = seqs_[first_[r]];
    reserve(first, first.prompt);
    run(first_[r]);
    for (int64_t j = 1; j < samples_[r]; ++j) {
      // Each other sample's own copy of the prompt's last block, if it is partly filled.
      const size_t k = first_[r] + static_cast<size_t>(j);
      if (first.prompt % blocks_.block_tokens() != 0)
        seqs_[k].blocks.push_back(*blocks_.allocate());
      run(k);
    }
    add_span(first_[r], std::min(first.prompt, budget));
  }
  return step;
}

std::vector<Scheduler::Sampling> Scheduler::computed(const Step& step) {
  std::vector<Sampling> out;
  const int64_t B = blocks_.block_tokens();
  for (size_t i = 0; i < step.spans.size(); ++i) {
    const size_t k = step.spans[i].seq;
    auto& s = seqs_[k];
    s.cached += step.spans[i].count;
    s.high = std::max(s.high, s.cached);
    if (s.cached < s.known) continue;
    out.push_back({k, i});
    if (s.sample != 0 || s.known > s.prompt) continue;
    // The prompt is in: the request's other samples share its full blocks and copy the last.
    const int64_t full = s.prompt / B;
    for (int64_t j = 1; j < samples_[s.request]; ++j) {
      auto& sibling = seqs_[k + static_cast<size_t>(j)];
      std::vector<int64_t> table(s.blocks.begin(), s.blocks.begin() + full);
      for (auto b : table)
        blocks_.share(b);
      if (s.prompt % B != 0) {
        blocks_.copy_block(s.blocks[static_cast<size_t>(full)], sibling.blocks.front());
        table.push_back(sibling.blocks.front());
      }
      sibling.blocks = std::move(table);
      sibling.cached = sibling.high = s.prompt;
      sibling.forked = true;
      out.push_back({k + static_cast<size_t>(j), i});
    }
  }
  return out;
}

void Scheduler::finish(size_t k) {
  release(seqs_[k]);
  seqs_[k].done = true;
}

}  // namespace flywheel
