#include "rollout/engine.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include "trainer/core/error.h"
#include "trainer/model/device.h"
#include "trainer/text/decode_stream.h"

namespace flywheel {
namespace {

int64_t max_seq_len_for(const ModelConfig& config, const EngineOptions& o) {
  return o.max_seq_len > 0 ? o.max_seq_len : config.max_position_embeddings;
}

KVBlocks make_blocks(LlamaForCausalLM& model, const EngineOptions& o) {
  if (o.max_step_tokens < 1) throw UserError("rollout: max_step_tokens must be >= 1");
  if (o.max_num_seqs < 1) throw UserError("rollout: max_num_seqs must be >= 1");
  if (o.kv_block_tokens < 1) throw UserError("rollout: kv_block_tokens must be >= 1");
  if (!(o.kv_cache_fraction >= 0 && o.kv_cache_fraction < 1)) {
    throw UserError("rollout: kv_cache_fraction must be in [0, 1), got " +
                    std::to_string(o.kv_cache_fraction));
  }
  const auto& config = model->config();
  const auto weight = model->model->embed_tokens->weight;
  const int64_t length = max_seq_len_for(config, o);
  const int64_t bytes =
      o.kv_cache_fraction > 0
          ? static_cast<int64_t>(o.kv_cache_fraction *
                                 static_cast<double>(free_device_memory(weight.device())))
          : o.kv_cache_mb << 20;
  const int64_t blocks =
      o.kv_blocks > 0 ? o.kv_blocks
                      : KVBlocks::blocks_in(config, o.kv_block_tokens, bytes, weight.scalar_type());
  if (blocks < KVBlocks::blocks_for(length, o.kv_block_tokens)) {
    const auto budget = o.kv_blocks > 0 ? "kv_blocks " + std::to_string(o.kv_blocks)
                        : o.kv_cache_fraction > 0
                            ? "kv_cache_fraction " + std::to_string(o.kv_cache_fraction) + " (" +
                                  std::to_string(bytes >> 20) + " MiB)"
                            : "kv_cache_mb " + std::to_string(o.kv_cache_mb);
    throw UserError("rollout: " + budget + " holds no sequence of " + std::to_string(length) +
                    " tokens (raise it, or lower max_seq_len)");
  }
  return KVBlocks(config, blocks, o.kv_block_tokens, length, weight.options().requires_grad(false));
}

// Where the earliest of `stops` begins in `text`, and which one; npos when none is there.
std::pair<size_t, const std::string*> find_stop(const std::string& text,
                                                const std::vector<std::string>& stops) {
  std::pair<size_t, const std::string*> found = {std::string::npos, nullptr};
  for (const auto& stop : stops) {
    const auto at = text.find(stop);
    if (at < found.first) found = {at, &stop};
  }
  return found;
}

}  // namespace

// What the engine keeps of a sequence beyond the scheduler's counts.
struct Engine::Sequence {
  std::vector<int64_t> tokens;  // prompt, then what was generated
  uint64_t stream = 0;          // its sampling stream (rollout/sampler.h)
  Completion out;
  // The generated text so far, token by token, when the request has stop strings: they are
  // looked for in what each token adds, and out.text is this text when the sequence ends.
  std::optional<DecodeStream> text;
};

// One generate() call.
struct Engine::Run {
  const std::vector<Request>& requests;
  std::vector<Sequence> seqs;
  Scheduler scheduler;
  std::vector<int64_t> unfinished;  // per request: samples still running
  EngineProgress progress;
};

EngineOptions sized_engine_options(const LlamaForCausalLM& model, int64_t max_num_seqs,
                                   int64_t max_seq_len) {
  EngineOptions options;
  options.max_num_seqs = std::max<int64_t>(1, max_num_seqs);
  options.max_seq_len = max_seq_len;
  const auto per_seq = KVBlocks::blocks_for(max_seq_len, options.kv_block_tokens);
  const auto bytes =
      KVBlocks::bytes_for(model->config(), options.max_num_seqs * per_seq, options.kv_block_tokens,
                          model->model->embed_tokens->weight.scalar_type());
  options.kv_cache_mb = (bytes + (1 << 20) - 1) >> 20;
  return options;
}

Engine::Engine(LlamaForCausalLM& model, const EngineOptions& options, const Tokenizer* tokenizer)
    : model_(model),
      options_(options),
      tokenizer_(tokenizer),
      blocks_(make_blocks(model, options)),
      // No more sequences in flight than one step's tokens: every running sequence then
      // decodes in every step (the scheduler never has to leave one out).
      max_running_(std::min(options.max_num_seqs, options.max_step_tokens)) {
  // Not for a model whose parameters are sharded (ZeRO-3): its forward gathers each layer,
  // which a graph cannot replay.
  const bool graphs = model->model->embed_tokens->weight.device().is_cuda() &&
                      options.cuda_graphs && model->model->parameter_gather == nullptr;
  if (graphs || options.fixed_shape_decode) {
    decode_step_ = std::make_unique<DecodeStep>(model_, blocks_, max_running_, graphs);
  } else if (CpuDecodeStep::applies(model) && blocks_.kernel_layout()) {
    cpu_step_ = std::make_unique<CpuDecodeStep>(model_, blocks_);
  }
}

Engine::~Engine() = default;

void Engine::validate(const Request& r) const {
  const auto vocab = model_->config().vocab_size;
  if (r.prompt.empty()) throw UserError("empty prompt");
  for (auto id : r.prompt) {
    if (id < 0 || id >= vocab) {
      throw UserError("token id " + std::to_string(id) + " outside the vocabulary [0, " +
                      std::to_string(vocab) + ")");
    }
  }
  for (auto id : r.stop_ids) {
    if (id < 0 || id >= vocab) {
      throw UserError("stop token id " + std::to_string(id) + " outside the vocabulary [0, " +
                      std::to_string(vocab) + ")");
    }
  }
  if (r.min_new_tokens > 0 && std::set<int64_t>(r.stop_ids.begin(), r.stop_ids.end()).size() >=
                                  static_cast<size_t>(vocab)) {
    throw UserError("every token is a stop token: nothing can be drawn before min_new_tokens");
  }
  if (r.n < 1) throw UserError("n must be >= 1, got " + std::to_string(r.n));
  if (r.n > max_running_) {
    throw UserError("n = " + std::to_string(r.n) + " samples run together, but at most " +
                    std::to_string(max_running_) +
                    " sequences are in flight (max_num_seqs, max_step_tokens)");
  }
  if (r.max_new_tokens < 1) throw UserError("max_new_tokens must be >= 1");
  if (r.min_new_tokens < 0 || r.min_new_tokens > r.max_new_tokens) {
    throw UserError("min_new_tokens must be in [0, max_new_tokens]");
  }
  const auto prompt = std::ssize(r.prompt), need = prompt + r.max_new_tokens;
  if (need > blocks_.max_seq_len()) {
    throw UserError("a prompt of " + std::to_string(prompt) + " tokens and " +
                    std::to_string(r.max_new_tokens) + " new ones exceed the " +
                    std::to_string(blocks_.max_seq_len()) +
                    " tokens a sequence may hold (the model's context, or max_seq_len)");
  }
  // A sequence fits the KV memory alone (it holds one of max_seq_len tokens), so preempting
  // the others lets it finish; but a request's samples must enter together: its prompt, and a
  // copy of the prompt's last block for each sample past the first.
  const int64_t B = blocks_.block_tokens();
  const int64_t entry = KVBlocks::blocks_for(prompt, B) + (prompt % B != 0 ? r.n - 1 : 0);
  if (entry > blocks_.blocks()) {
    throw UserError("the KV memory holds " + std::to_string(blocks_.blocks()) + " blocks of " +
                    std::to_string(B) + " tokens; the " + std::to_string(r.n) +
                    " samples of this prompt need " + std::to_string(entry) +
                    " to start (raise kv_cache_mb)");
  }
  for (const auto& s : r.stop_strings) {
    if (s.empty()) throw UserError("empty stop string");
  }
  if (!r.stop_strings.empty() && tokenizer_ == nullptr) {
    throw UserError("stop strings need a tokenizer");
  }
  r.sampling.validate("");
}

std::vector<std::vector<Completion>> Engine::generate(const std::vector<Request>& requests,
                                                      const ProgressFn& progress) {
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      validate(requests[i]);
    } catch (const UserError& e) {
      throw UserError("rollout: request " + std::to_string(i) + ": " + e.what());
    }
  }
  blocks_.release_all();
  Run run{requests, {}, Scheduler(blocks_, options_.max_step_tokens, max_running_), {}, {}};
  run.progress.requests = static_cast<int64_t>(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    const uint64_t id = r.id >= 0 ? static_cast<uint64_t>(r.id) : i;
    run.scheduler.add(static_cast<int64_t>(r.prompt.size()), r.n);
    run.unfinished.push_back(r.n);
    for (int64_t j = 0; j < r.n; ++j)
      run.seqs.push_back({r.prompt, request_seed(r.seed, id, static_cast<uint64_t>(j)), {}, {}});
  }
  const auto start = std::chrono::steady_clock::now();
  {
    const c10::InferenceMode inference;
    while (step(run)) {
      if (progress) {
        run.progress.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        progress(run.progress);
      }
    }
  }
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats_.preemptions += run.scheduler.preemptions();
  if (decode_step_) stats_.graph_captures = decode_step_->captures();
  std::vector<std::vector<Completion>> out(requests.size());
  for (size_t k = 0; k < run.seqs.size(); ++k)
    out[run.scheduler.seq(k).request].push_back(std::move(run.seqs[k].out));
  return out;
}

bool Engine::step(Run& run) {
  auto& scheduler = run.scheduler;
  const auto plan = scheduler.next();
  if (plan.spans.empty()) {
    // A plan can only be empty once every sequence is done; anything else would return
    // completions cut short.
    TORCH_CHECK(scheduler.idle(), "Engine: the scheduler planned nothing with sequences left");
    return false;
  }
  // The forward's layout (rollout/kv_blocks.h): the spans of one token first, as rows with
  // their block tables, then the longer spans; and for each span, the row it samples at.
  const int64_t T = blocks_.table_width();
  std::vector<int64_t> ids, positions, tables;
  std::vector<BlockSpan> spans;
  std::vector<int64_t> last_row(plan.spans.size());
  int64_t keys = 1;
  for (size_t i = 0; i < plan.spans.size(); ++i) {
    const auto& span = plan.spans[i];
    if (span.count != 1) continue;
    const auto& seq = scheduler.seq(span.seq);
    last_row[i] = std::ssize(ids);
    ids.push_back(run.seqs[span.seq].tokens[static_cast<size_t>(span.start)]);
    positions.push_back(span.start);
    tables.insert(tables.end(), seq.blocks.begin(), seq.blocks.end());
    tables.resize(tables.size() + static_cast<size_t>(T - std::ssize(seq.blocks)),
                  blocks_.scratch());
    keys = std::max(keys, span.start + 1);
  }
  const auto rows = std::ssize(ids);
  for (size_t i = 0; i < plan.spans.size(); ++i) {
    const auto& span = plan.spans[i];
    if (span.count == 1) continue;
    const auto& tokens = run.seqs[span.seq].tokens;
    const auto offset = std::ssize(ids);
    spans.push_back({scheduler.seq(span.seq).blocks, span.start, span.count, offset});
    for (int64_t t = span.start; t < span.start + span.count; ++t) {
      ids.push_back(tokens[static_cast<size_t>(t)]);
      positions.push_back(t);
    }
    last_row[i] = offset + span.count - 1;
  }
  for (const auto& span : plan.spans) {
    // Tokens a preempted sequence had cached before are computed again; prompt tokens count
    // the first time.
    const auto& seq = scheduler.seq(span.seq);
    const auto again = std::clamp<int64_t>(seq.high - span.start, 0, span.count);
    stats_.recomputed_tokens += again;
    stats_.prompt_tokens +=
        std::max<int64_t>(0, std::min(span.start + span.count, seq.prompt) - (span.start + again));
  }
  torch::Tensor hidden, all_logits;
  if (decode_step_ && spans.empty()) {
    all_logits = decode_step_->run(ids, positions, tables);  // [B, V]
  } else if (cpu_step_ && spans.empty() && cpu_step_->worth(rows)) {
    all_logits = cpu_step_->run(ids, positions, tables);  // [R, V]
  } else {
    hidden = block_forward(model_, blocks_, ids, positions, rows, tables, keys, std::move(spans));
  }
  ++stats_.steps;
  // The step's keys and values are in; a prompt that just finished is now forked to its
  // siblings, and they sample from its row too.
  const auto who = scheduler.computed(plan);
  if (who.empty()) return true;
  // The rows sampled at, each once through the head (a fork's samples share a row), then one
  // row of logits per sampler.
  std::vector<int64_t> rows_once, row_of;
  for (const auto& s : who) {
    const auto row = last_row[s.span];
    if (rows_once.empty() || rows_once.back() != row) rows_once.push_back(row);
    row_of.push_back(static_cast<int64_t>(rows_once.size()) - 1);
  }
  const auto device = model_->model->embed_tokens->weight.device();
  const auto index = [&](const std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kInt64).to(device, /*non_blocking=*/true);
  };
  // A step whose rows all sample, in order (every decoding step of a fused or graphed run),
  // takes its logits as they are.
  const bool every_row =
      all_logits.defined() && std::ssize(rows_once) == rows && rows_once.back() == rows - 1;
  auto logits = every_row              ? all_logits.narrow(0, 0, std::ssize(rows_once))
                : all_logits.defined() ? all_logits.index_select(0, index(rows_once))
                                       : model_->logits(hidden.index_select(0, index(rows_once)));
  if (rows_once.size() < who.size()) logits = logits.index_select(0, index(row_of));
  std::vector<RowSampling> draws;
  for (const auto& s : who) {
    const auto& r = run.requests[scheduler.seq(s.seq).request];
    const auto& seq = run.seqs[s.seq];
    const auto made = static_cast<int64_t>(seq.out.token_ids.size());
    draws.push_back({&r.sampling, seq.stream, static_cast<uint64_t>(made),
                     made < r.min_new_tokens && !r.stop_ids.empty() ? &r.stop_ids : nullptr});
  }
  const auto tokens = sample_rows(logits, draws);
  for (size_t i = 0; i < who.size(); ++i)
    take_token(run, who[i].seq, tokens[i]);
  return true;
}

void Engine::take_token(Run& run, size_t k, const SampledToken& t) {
  auto& s = run.seqs[k];
  const auto& r = run.requests[run.scheduler.seq(k).request];
  s.tokens.push_back(t.token);
  run.scheduler.sampled(k);
  auto& out = s.out;
  out.token_ids.push_back(t.token);
  out.logprobs.push_back(t.logprob);
  out.model_logprobs.push_back(t.model_logprob);
  ++stats_.generated_tokens;
  ++run.progress.generated_tokens;

  const bool stop_token =
      std::find(r.stop_ids.begin(), r.stop_ids.end(), t.token) != r.stop_ids.end();
  const auto made = static_cast<int64_t>(out.token_ids.size());
  if (stop_token) {
    out.finish_reason = "stop";
    out.stop = std::to_string(t.token);
  } else if (made == r.max_new_tokens) {
    out.finish_reason = "length";
  }
  const auto finish = [&] {
    run.scheduler.finish(k);
    if (--run.unfinished[run.scheduler.seq(k).request] == 0) ++run.progress.finished;
  };
  // With stop strings the text grows token by token (the stop token itself is not text) and
  // only what each token adds is searched; without, it is decoded once when the sequence ends.
  if (tokenizer_ != nullptr && !stop_token && !r.stop_strings.empty()) {
    if (!s.text) s.text.emplace(*tokenizer_);
    const size_t before = out.text.size();
    out.text += s.text->push(t.token);
    if (out.text.size() > before) {
      // Earlier text held no stop string, so a new one ends in what this token added.
      size_t longest = 0;
      for (const auto& stop : r.stop_strings)
        longest = std::max(longest, stop.size());
      const size_t from = before >= longest ? before - longest + 1 : 0;
      const auto [at, stop] = find_stop(out.text.substr(from), r.stop_strings);
      if (stop != nullptr) {
        out.finish_reason = "stop";
        out.stop = *stop;
        out.text.resize(from + at);
        finish();
        return;
      }
    }
  }
  if (out.finish_reason.empty()) return;
  if (s.text) {
    out.text += s.text->finish();
  } else if (tokenizer_ != nullptr) {
    out.text =
        tokenizer_->decode({out.token_ids.begin(), out.token_ids.end() - (stop_token ? 1 : 0)});
  }
  finish();
}

}  // namespace flywheel
