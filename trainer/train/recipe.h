// A training recipe: the YAML file a researcher edits and launches with
//   flywheel train RECIPE.yaml [section.key=value ...]
// parsed once into the typed structs below. Every key is checked where it is read: unknown
// keys, wrong types, out-of-range values and missing files are UserErrors naming the file,
// line and key and what was expected. Command-line overrides are applied to the YAML tree
// before parsing, so they are checked the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/data/examples.h"

namespace flywheel {

struct ModelSection {
  std::string path;       // Hugging Face directory to start from, or
  std::string config;     // a config.json for a freshly initialised model (with init_seed)
  std::string tokenizer;  // directory with tokenizer.model; default: path
  std::string dtype = "float32";
  std::string device = "cpu";
  double init_std = 0.02;  // normal(0, init_std) for linear and embedding weights
};

struct DataSection {
  std::string train_file;
  std::string eval_file;  // optional held-out file, evaluated every eval_every_steps
  DataOptions options;    // chat_template, max_length, overlong, skip_invalid, add_bos
  bool packing = false;   // SFT only
  bool group_by_length = true;
  // Tokenize each file once per node into a memory-mapped cache (trainer/data/token_cache.h)
  // in cache_dir ("" = default_token_cache_dir()); false: every rank tokenizes into memory.
  bool token_cache = true;
  std::string cache_dir;
  // Before training, drop the training rows that contain an instance of the recipe's eval sets
  // (data.eval_file, eval.generation_file) by Tulu 3's n-gram rule (trainer/eval/decontaminate.h,
  // trainer/train/decontamination.h).
  bool decontaminate = false;
  int64_t decontaminate_ngram = 8;
  double decontaminate_threshold = 0.5;
};

struct TrainingSection {
  int64_t epochs = 1;
  int64_t max_steps = 0;  // > 0 caps the number of optimizer steps
  int64_t micro_batch_size = 8;
  int64_t gradient_accumulation_steps = 1;
  double learning_rate = 2e-5;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  std::string lr_scheduler = "linear";  // constant | linear | cosine
  double warmup_ratio = 0.0;
  int64_t warmup_steps = 0;                       // overrides warmup_ratio when > 0
  double max_grad_norm = 1.0;                     // <= 0 disables clipping
  std::string sft_loss_reduction = "token_mean";  // token_mean | sum
  // Recompute each decoder layer in backward instead of keeping its activations.
  bool activation_checkpointing = false;
  // Label log-probs through the LM head this many tokens at a time, recomputed in backward, so
  // no [B, T, V] logits are held (0: the whole batch at once).
  int64_t logits_chunk_tokens = 0;
  // Rows that begin with the same tokens (a prompt's samples, a DPO pair's prompt) compute
  // them once, and padding not at all (trainer/model/prefix_tree.h); false: every row whole.
  bool share_prefixes = true;
};

struct LossSection {
  std::string type = "dpo";  // dpo | dpo_norm | ipo | simpo (trainer: dpo)
  double beta = 0.1;
  double label_smoothing = 0.0;
  double gamma_beta_ratio = 0.5;  // simpo
  double rpo_alpha = 0.0;         // dpo family: weight of the chosen response's NLL (RPO)
  double rm_margin = 0.0;         // reward_model: margin added to Bradley–Terry
  double rm_center_coefficient = 0.0;
};

struct LoggingSection {
  int64_t every_steps = 1;
  int64_t eval_every_steps = 0;   // 0 = only before and after training
  std::string progress = "auto";  // auto | bar | lines
};

// The arena inside a run (trainer/arena/run_arena.h): at the start, every every_steps steps (RL:
// iterations) and at the end, the policy answers `prompts`, and the answers play the baselines'
// (answered once) and the earlier checkpoints', judged as `flywheel arena judge` judges; all of
// the run's battles are rated together with one fixed anchor after each round.
struct ArenaSection {
  std::string prompts;                 // JSONL as `arena answer` reads; "" = no arena
  std::vector<std::string> baselines;  // NAME=DIR: fixed players (a model directory each)
  // rm:DIR, verifier:NAME or llm:DIR; several, with as many `trust` thresholds: a cascade of
  // LLM judges (Trust or Escalate).
  std::vector<std::string> judges;
  std::vector<double> trust;
  int64_t annotators = 5;  // cascade: sampled verdicts per order and judge
  double annotator_temperature = 1.0;
  bool last_judge_decides = false;
  std::string anchor;                     // NAME=RATING; default: the first baseline (else step-0)
                                          // at 1000
  std::string baseline;                   // the LC win rate's baseline; default: the first baseline
  int64_t every_steps = 0;                // 0: logging.eval_every_steps
  int64_t previous_checkpoints = -1;      // earlier checkpoints a checkpoint plays; -1: all
  int64_t bootstrap = 100;                // rounds for the 95% intervals
  std::string bootstrap_unit = "prompt";  // prompt (a question's battles together) | battle
  bool style_control = false;             // Chatbot Arena's style control in the fit
  int64_t max_new_tokens = 256;           // per answer
  double temperature = 0;                 // 0: greedy
  double tie_band = 0;                    // rm: scores closer than this tie
  int64_t judge_max_new_tokens = 512;     // llm
  std::string judge_template;             // llm: a prompt file; "" = the built-in MT-Bench one
  bool plot = true;                       // ratings.png and ratings_by_step.png (gnuplot)

  bool enabled() const { return !prompts.empty(); }
};

// Held-out evaluation by generation (besides the eval_file loss/accuracy): greedy answers to
// the prompts of an SFT-format file, scored against its last assistant message.
struct EvalSection {
  std::string generation_file;
  std::string verifier;  // a name from verifiers/ (e.g. arithmetic)
  int64_t max_new_tokens = 32;
  int64_t max_samples = 256;
  int64_t batch_size = 64;
  ArenaSection arena;
};

struct CheckpointSection {
  int64_t every_steps = 0;  // 0 = only at the end
  int64_t keep_last = 2;
  // "arena": the best-rated checkpoint (eval.arena) is kept besides the last keep_last, and every
  // arena round's step is checkpointed; "" = none.
  std::string keep_best;
};

// Data parallelism across the ranks a launcher started (torchrun, flywheel-launch, srun);
// ignored by a single process. micro_batch_size stays per rank: a step is
// micro_batch_size x gradient_accumulation_steps x world_size examples.
struct DistributedSection {
  int64_t zero_stage = 0;  // 0: replicated AdamW; 1: sharded state; 2: + grads; 3: + parameters
  double bucket_mb = 25;   // gradient bucket size (float32)
  // What gradients travel in between ranks ("float32" or "bfloat16", half the traffic); they
  // accumulate in float32 either way.
  std::string reduce_dtype = "float32";
  int64_t timeout_s = 1800;
  int64_t rendezvous_timeout_s = 300;
};

// Online RL (trainer: grpo | rloo | online_dpo). Every iteration takes the next
// prompts_per_iteration prompts of data.train_file (RLVR rows: "messages" ending with the user's
// turn, or a "prompt" string; "ground_truth"; "dataset" naming the verifier), samples group_size
// responses to each with the rollout engine on the policy's own weights, scores them with the
// verifiers, and trains on them for `epochs` passes of `minibatches` optimizer steps.
// data.eval_file (the same format) gives the held-out pass rate of greedy answers.
struct RlSection {
  int64_t iterations = 100;
  int64_t prompts_per_iteration = 16;  // over all ranks
  int64_t group_size = 8;              // responses per prompt (>= 2 but with ppo)
  int64_t max_new_tokens = 256;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  int64_t epochs = 1;       // passes over an iteration's responses
  int64_t minibatches = 1;  // optimizer steps per pass
  double beta = 0.05;  // KL penalty against the initial policy (k3 in the loss; ppo: in the reward,
                       // rl.kl_estimator); 0: no reference model
  double clip = 0.2;   // ε of the ratio
  std::string advantage = "standard";           // grpo: standard | centered (rloo: leave-one-out)
  std::string loss_aggregation = "token_mean";  // token_mean | sequence_mean
  std::string verifier;                         // every row's verifier; "" = each row's "dataset"
  double success_reward = 1.0;                  // reward of a correct response (Tulu 3 used 10)
  double no_eos_penalty = 0.0;  // added to the reward of a response cut at max_new_tokens
  int64_t kv_cache_mb = 0;      // rollout KV memory; 0 = what the iteration's sequences need
  // online_dpo: each group's best and worst response (by reward) form a pair, trained with the
  // loss section's DPO variant against this reference: "initial" (the starting policy, frozen)
  // or "iteration" (the policy that sampled them: the engine's own log-probs).
  std::string reference = "initial";
  // A reward model (a *ForSequenceClassification directory) scoring every response; its score
  // times reward_model_weight is added to the verifier's reward. With one, rows need no
  // "dataset" (they are scored by the model alone).
  std::string reward_model;
  double reward_model_weight = 1.0;
  // ppo: the critic starts from value_model (a reward model, or a causal LM given a fresh head)
  // or, when empty, from the policy's own weights with a fresh head at zero; it trains with its
  // own optimizer at value_learning_rate (0 = training.learning_rate). GAE with gamma and lam;
  // clip is the policy's ε, value_clip the value's. The KL penalty beta · (k1 or k3) of each
  // token is folded into the reward; target_kl > 0 adapts beta (Ziegler et al.'s controller,
  // per-response KL, horizon kl_horizon responses).
  std::string value_model;
  double value_learning_rate = 0.0;
  double value_clip = 0.2;
  double gamma = 1.0;
  double lam = 0.95;
  std::string kl_estimator = "k1";
  double target_kl = 0.0;
  double kl_horizon = 10000.0;
};

struct Recipe {
  std::string source;   // the recipe file
  std::string trainer;  // sft | dpo | reward_model | ppo | grpo | rloo | online_dpo
  uint64_t seed = 42;
  std::string output_dir;
  ModelSection model;
  DataSection data;
  TrainingSection training;
  LossSection loss;
  LoggingSection logging;
  EvalSection eval;
  CheckpointSection checkpoint;
  DistributedSection distributed;
  RlSection rl;

  bool is_rl() const {
    return trainer == "ppo" || trainer == "grpo" || trainer == "rloo" || trainer == "online_dpo";
  }
};

// Parses `path` with `overrides` ("section.key=value") applied; relative paths in the recipe
// are resolved against the current directory. UserError on any problem.
// check_paths = false accepts paths that do not exist here (planning a run for another
// machine).
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {},
                   bool check_paths = true);

// The resolved recipe as YAML (what --print-config shows and the run directory records).
std::string recipe_to_yaml(const Recipe& recipe);

}  // namespace flywheel
