#include "rollout/scheduler.h"

#include <algorithm>

namespace flywheel {

Scheduler::Scheduler(KVSlots& slots, int64_t max_step_tokens)
    : slots_(slots), max_step_tokens_(max_step_tokens) {
  TORCH_CHECK(max_step_tokens >= slots.slots(), "Scheduler: a step of ", max_step_tokens,
              " tokens cannot advance ", slots.slots(), " sequences");
}

void Scheduler::add(int64_t prompt, int64_t n) {
  const size_t request = first_.size();
  first_.push_back(seqs_.size());
  samples_.push_back(n);
  waiting_.push_back(request);
  for (int64_t j = 0; j < n; ++j)
    seqs_.push_back({request, j, prompt, prompt, 0, -1, false});
}

Scheduler::Step Scheduler::next() {
  Step step;
  int64_t budget = max_step_tokens_;
  const auto add_span = [&](size_t k, int64_t count) {
    auto& s = seqs_[k];
    const int64_t offset =
        step.spans.empty() ? 0 : step.spans.back().offset + step.spans.back().count;
    step.spans.push_back({s.slot, s.cached, count, offset});
    step.seqs.push_back(k);
    budget -= count;
  };
  for (auto k : running_) {
    if (budget == 0) break;
    if (seqs_[k].cached >= seqs_[k].prompt) add_span(k, 1);
  }
  for (auto k : running_) {
    const auto& s = seqs_[k];
    if (budget == 0) break;
    if (s.sample == 0 && s.cached < s.prompt) add_span(k, std::min(s.prompt - s.cached, budget));
  }
  while (!waiting_.empty() && budget > 0) {
    const size_t r = waiting_.front();
    if (slots_.free_slots() < samples_[r]) break;  // no room: it waits
    waiting_.pop_front();
    for (int64_t j = 0; j < samples_[r]; ++j) {
      const size_t k = first_[r] + static_cast<size_t>(j);
      seqs_[k].slot = *slots_.allocate();
      running_.push_back(k);
    }
    add_span(first_[r], std::min(seqs_[first_[r]].prompt, budget));
  }
  return step;
}

std::vector<Scheduler::Sampling> Scheduler::computed(const Step& step) {
  std::vector<Sampling> out;
  for (size_t i = 0; i < step.spans.size(); ++i) {
    const size_t k = step.seqs[i];
    auto& s = seqs_[k];
    s.cached += step.spans[i].count;
    if (s.cached < s.known) continue;
    out.push_back({k, i});
    if (s.known > s.prompt) continue;
    // The prompt is in: the request's other samples take its keys and values.
    for (int64_t j = 1; j < samples_[s.request]; ++j) {
      auto& sibling = seqs_[k + static_cast<size_t>(j)];
      slots_.copy_prefix(s.slot, sibling.slot, s.prompt);
      sibling.cached = s.prompt;
      out.push_back({k + static_cast<size_t>(j), i});
    }
  }
  return out;
}

void Scheduler::finish(size_t k) {
  auto& s = seqs_[k];
  s.done = true;
  slots_.release(s.slot);
  running_.erase(std::find(running_.begin(), running_.end(), k));
  const auto last = std::max_element(running_.begin(), running_.end(), [&](size_t a, size_t b) {
    return seqs_[a].slot < seqs_[b].slot;
  });
  if (last != running_.end() && seqs_[*last].slot > s.slot) {
    auto& moved = seqs_[*last];
    slots_.relocate(moved.slot, s.slot, moved.cached);
    moved.slot = s.slot;
  }
  s.slot = -1;
}

}  // namespace flywheel
