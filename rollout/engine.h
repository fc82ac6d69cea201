// The rollout engine: continuously batched generation on the trainer's own LlamaForCausalLM
// (its parameters as they are, any dtype, no copy), with the log-probs of every sampled token.
//
// One loop. Each step is one forward of the tokens the scheduler picks within a token budget
// (rollout/scheduler.h: decoding sequences, prompts in chunks, waiting requests admitted as
// KV blocks free up, sequences preempted when they run out), laid end to end: the
// projections and MLPs run on all of them at once, the attention per sequence over its blocks
// (rollout/kv_blocks.h). Sequences that finish leave at once. A request's n samples share its
// prefill and its prompt's blocks. Logits are computed only for the positions
// that sample (a CUDA graph's fixed-shape step computes them for all its rows), and all the
// rows of a step are sampled together (rollout/sampler.h). On a GPU, steps that only decode
// replay CUDA graphs (rollout/decode_step.h); on a CPU with AVX-512, a float32 model's run as
// one fused pass per thread (rollout/cpu_decode_step.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rollout/cpu_decode_step.h"
#include "rollout/decode_step.h"
#include "rollout/kv_blocks.h"
#include "rollout/sampler.h"
#include "rollout/scheduler.h"
#include "trainer/model/llama.h"
#include "trainer/text/tokenizer.h"

namespace flywheel {

struct Request {
  std::vector<int64_t> prompt;  // token ids, not empty
  SamplingParams sampling;
  int64_t max_new_tokens = 128;
  int64_t min_new_tokens = 0;  // stop tokens are not drawn before this many
  std::vector<int64_t> stop_ids;
  std::vector<std::string> stop_strings;  // matched on the decoded text (needs a tokenizer)
  int64_t n = 1;                          // samples
  uint64_t seed = 0;
  // Sample j draws from request_seed(seed, id, j); -1: the request's index in generate().
  int64_t id = -1;
};

struct Completion {
  std::vector<int64_t> token_ids;      // generated, a stop token included
  std::string text;                    // decoded, ending before a stop string or stop token
  std::vector<double> logprobs;        // of each token under the distribution sampled from
  std::vector<double> model_logprobs;  // under the model's distribution at temperature 1
  std::string finish_reason;           // "stop" or "length"
  std::string stop;  // what stopped it: the stop string, or the stop token's id as text
};

struct EngineOptions {
  int64_t kv_cache_mb = 256;       // KV memory for all sequences
  double kv_cache_fraction = 0;    // > 0: this fraction of the device's free memory instead
                                   // (on the CPU, of MemAvailable)
  int64_t kv_block_tokens = 16;    // tokens a KV block holds
  int64_t kv_blocks = 0;           // > 0: exactly this many blocks, whatever the budget says
  int64_t max_seq_len = 0;         // tokens a sequence may hold (prompt + new); 0: the model's
                                   // context
  int64_t max_num_seqs = 256;      // sequences in flight at most
  int64_t max_step_tokens = 2048;  // token budget of one forward
  bool cuda_graphs = true;         // on a GPU, steps that only decode replay CUDA graphs
  // Steps that only decode run at the graphs' fixed shapes on any device (eagerly on the
  // CPU): what a graph captures, for tests without a GPU.
  bool fixed_shape_decode = false;
};

// Options whose KV memory holds `max_num_seqs` sequences of `max_seq_len` tokens (prompt + new)
// of `model` at once, no more: for callers that know their whole workload up front (it never
// preempts).
EngineOptions sized_engine_options(const LlamaForCausalLM& model, int64_t max_num_seqs,
                                   int64_t max_seq_len);

struct EngineStats {
  int64_t steps = 0, prompt_tokens = 0, generated_tokens = 0;
  int64_t preemptions = 0, recomputed_tokens = 0;  // tokens computed again after preemption
  int64_t graph_captures = 0;
  double seconds = 0;
};

// Reported after every step of generate().
struct EngineProgress {
  int64_t requests = 0, finished = 0;  // requests finished: all their samples are
  int64_t generated_tokens = 0;
  double seconds = 0;
};
using ProgressFn = std::function<void(const EngineProgress&)>;

class Engine {
 public:
  // `tokenizer` (may be null) decodes texts and matches stop strings.
  Engine(LlamaForCausalLM& model, const EngineOptions& options,
         const Tokenizer* tokenizer = nullptr);
  ~Engine();

  // Runs every request to completion: result[i] holds requests[i].n completions. UserError
  // naming the request for one validate() refuses.
  std::vector<std::vector<Completion>> generate(const std::vector<Request>& requests,
                                                const ProgressFn& progress = {});
  // UserError saying what is wrong with `r`: an empty prompt, an id outside the vocabulary, a
  // prompt and new tokens longer than a sequence may be or than the KV memory holds, more
  // samples than sequences in flight, parameters out of range, stop strings without a
  // tokenizer.
  void validate(const Request& r) const;

  int64_t max_running() const { return max_running_; }  // sequences in flight at most
  int64_t max_seq_len() const { return blocks_.max_seq_len(); }
  int64_t kv_blocks() const { return blocks_.blocks(); }
  const EngineStats& stats() const { return stats_; }

 private:
  struct Sequence;
  struct Run;
  // Runs one forward of the scheduler's next step and samples; false when nothing is left.
  bool step(Run& run);
  // Appends the token sampled for sequence k; finishes the sequence if it stops.
  void take_token(Run& run, size_t k, const SampledToken& t);

  LlamaForCausalLM model_;
  EngineOptions options_;
  const Tokenizer* tokenizer_;
  KVBlocks blocks_;
  int64_t max_running_;
  std::unique_ptr<DecodeStep> decode_step_;  // null: decode steps run like any other
  std::unique_ptr<CpuDecodeStep> cpu_step_;  // null: as decode_step_
  EngineStats stats_;
};

}  // namespace flywheel
