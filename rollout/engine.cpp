#include "rollout/engine.h"

#include <algorithm>
#include <chrono>

#include "trainer/core/error.h"
#include "trainer/model/device.h"

namespace flywheel {
namespace {

int64_t slot_length_for(const ModelConfig& config, const EngineOptions& o) {
  return o.max_seq_len > 0 ? o.max_seq_len : config.max_position_embeddings;
}

KVSlots make_slots(LlamaForCausalLM& model, const EngineOptions& o) {
  if (o.max_step_tokens < 1) throw UserError("rollout: max_step_tokens must be >= 1");
  if (o.max_num_seqs < 1) throw UserError("rollout: max_num_seqs must be >= 1");
  const auto& config = model->config();
  const auto weight = model->model->embed_tokens->weight;
  const int64_t length = slot_length_for(config, o);
  const int64_t fit = KVSlots::slots_in(config, length, o.kv_cache_mb << 20, weight.scalar_type());
  // No more sequences in flight than one step's tokens: every running sequence then decodes
  // in every step (the scheduler never has to leave one out).
  const int64_t slots = std::min({o.max_num_seqs, o.max_step_tokens, fit});
  if (slots < 1) {
    throw UserError("rollout: kv_cache_mb " + std::to_string(o.kv_cache_mb) +
                    " holds no sequence of " + std::to_string(length) +
                    " tokens (raise it, or lower max_seq_len)");
  }
  return KVSlots(config, slots, length, weight.options().requires_grad(false));
}

}  // namespace

// What the engine keeps of a sequence beyond the scheduler's counts.
struct Engine::Sequence {
  std::vector<int64_t> tokens;  // prompt, then what was generated
  torch::Generator generator;
  Completion out;
};

Engine::Engine(LlamaForCausalLM& model, const EngineOptions& options, const Tokenizer* tokenizer)
    : model_(model), options_(options), tokenizer_(tokenizer), slots_(make_slots(model, options)) {}

void Engine::check(const Request& r) const {
  const auto vocab = model_->config().vocab_size;
  if (r.prompt.empty()) throw UserError("rollout: empty prompt");
  for (auto id : r.prompt) {
    if (id < 0 || id >= vocab) {
      throw UserError("rollout: token id " + std::to_string(id) + " outside the vocabulary [0, " +
                      std::to_string(vocab) + ")");
    }
  }
  if (r.n < 1) throw UserError("rollout: n must be >= 1, got " + std::to_string(r.n));
  if (r.n > slots_.slots()) {
    throw UserError("rollout: n = " + std::to_string(r.n) + " samples need as many slots; the " +
                    "KV budget holds " + std::to_string(slots_.slots()));
  }
  if (r.max_new_tokens < 1) throw UserError("rollout: max_new_tokens must be >= 1");
  if (r.min_new_tokens < 0 || r.min_new_tokens > r.max_new_tokens) {
    throw UserError("rollout: min_new_tokens must be in [0, max_new_tokens]");
  }
  const auto need = static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens;
  if (need > slots_.slot_length()) {
    throw UserError("rollout: a prompt of " + std::to_string(r.prompt.size()) + " tokens and " +
                    std::to_string(r.max_new_tokens) + " new ones exceed the " +
                    std::to_string(slots_.slot_length()) + " tokens of a sequence (max_seq_len)");
  }
  for (const auto& s : r.stop_strings) {
    if (s.empty()) throw UserError("rollout: empty stop string");
  }
  if (!r.stop_strings.empty() && tokenizer_ == nullptr) {
    throw UserError("rollout: stop strings need a tokenizer");
  }
  r.sampling.validate("rollout: ");
}

std::vector<std::vector<Completion>> Engine::generate(const std::vector<Request>& requests) {
  for (const auto& r : requests)
    check(r);
  const auto device = model_->model->embed_tokens->weight.device();
  std::vector<Sequence> seqs;
  Scheduler scheduler(slots_, options_.max_step_tokens);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    const uint64_t id = r.id >= 0 ? static_cast<uint64_t>(r.id) : i;
    scheduler.add(static_cast<int64_t>(r.prompt.size()), r.n);
    for (int64_t j = 0; j < r.n; ++j) {
      Sequence s;
      s.tokens = r.prompt;
      s.generator = make_generator(device, request_seed(r.seed, id, static_cast<uint64_t>(j)));
      seqs.push_back(std::move(s));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  {
    const c10::InferenceMode inference;
    while (step(requests, seqs, scheduler)) {
    }
  }
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<std::vector<Completion>> out(requests.size());
  for (size_t k = 0; k < seqs.size(); ++k)
    out[scheduler.seq(k).request].push_back(std::move(seqs[k].out));
  return out;
}

bool Engine::step(const std::vector<Request>& requests, std::vector<Sequence>& seqs,
                  Scheduler& scheduler) {
  const auto plan = scheduler.next();
  if (plan.spans.empty()) return false;
  std::vector<int64_t> ids, positions;
  for (size_t i = 0; i < plan.spans.size(); ++i) {
    const auto& span = plan.spans[i];
    const auto& tokens = seqs[plan.seqs[i]].tokens;
    for (int64_t t = span.start; t < span.start + span.count; ++t) {
      ids.push_back(tokens[static_cast<size_t>(t)]);
      positions.push_back(t);
    }
    if (span.start < scheduler.seq(plan.seqs[i]).prompt) stats_.prompt_tokens += span.count;
  }
  const auto device = model_->model->embed_tokens->weight.device();
  SlotAttention attention(slots_, plan.spans, device);
  const auto input = torch::tensor(ids, torch::kInt64).view({1, -1}).to(device);
  const auto where = torch::tensor(positions, torch::kInt64).view({1, -1}).to(device);
  const auto hidden =
      model_->model->forward(DecoderInput(input, where, {}, &attention));  // [1, N, C]
  ++stats_.steps;

  const auto samplers = scheduler.computed(plan);
  if (samplers.empty()) return true;
  // Logits only at the last positions of the spans someone samples from: [m, V].
  std::vector<int64_t> rows, row_of(plan.spans.size(), -1);
  for (const auto& s : samplers) {
    if (row_of[s.span] >= 0) continue;
    row_of[s.span] = static_cast<int64_t>(rows.size());
    rows.push_back(plan.spans[s.span].offset + plan.spans[s.span].count - 1);
  }
  const auto logits =
      model_->logits(hidden[0].index_select(0, torch::tensor(rows, torch::kInt64).to(device)));
  for (const auto& s : samplers) {
    take_token(requests[scheduler.seq(s.seq).request], seqs, s.seq, scheduler,
               logits[row_of[s.span]]);
  }
  return true;
}

void Engine::take_token(const Request& r, std::vector<Sequence>& seqs, size_t k,
                        Scheduler& scheduler, const torch::Tensor& logits) {
  auto& s = seqs[k];
  const int64_t before = static_cast<int64_t>(s.out.token_ids.size());
  const bool early = before < r.min_new_tokens;
  const auto t =
      sample_token(logits, r.sampling, s.generator, early ? r.stop_ids : std::vector<int64_t>{});
  s.tokens.push_back(t.token);
  scheduler.sampled(k);
  auto& out = s.out;
  out.token_ids.push_back(t.token);
  out.logprobs.push_back(t.logprob);
  out.model_logprobs.push_back(t.model_logprob);
  ++stats_.generated_tokens;

  const bool stop_token =
      std::find(r.stop_ids.begin(), r.stop_ids.end(), t.token) != r.stop_ids.end();
  if (stop_token) {
    out.finish_reason = "stop";
    out.stop = std::to_string(t.token);
  } else if (before + 1 == r.max_new_tokens) {
    out.finish_reason = "length";
  }
  // The text: decoded once at the end, or after every token while stop strings are watched
  // (the earliest one in the text so far, wherever its tokens began; it ends the text).
  const bool watch = !stop_token && !r.stop_strings.empty();
  if (tokenizer_ != nullptr && (watch || !out.finish_reason.empty())) {
    out.text =
        tokenizer_->decode({out.token_ids.begin(), out.token_ids.end() - (stop_token ? 1 : 0)});
  }
  if (watch) {
    size_t at = std::string::npos;
    for (const auto& stop : r.stop_strings) {
      const auto found = out.text.find(stop);
      if (found < at) {
        at = found;
        out.stop = stop;
      }
    }
    if (at != std::string::npos) {
      out.finish_reason = "stop";
      out.text.resize(at);
    }
  }
  if (!out.finish_reason.empty()) scheduler.finish(k);
}

}  // namespace flywheel
