// What one supervised training algorithm (SFT, DPO, reward model) contributes to the shared
// loop in train_loop.h: its examples, its model, and the loss of a micro-batch. The
// implementations, one per algorithm family, each in its own file:
//   sft_objective.cpp      supervised fine-tuning (token-level cross-entropy)
//   dpo_objective.cpp      DPO, length-normalised DPO, IPO, SimPO with a cached reference
//   reward_objective.cpp   Bradley–Terry / Plackett–Luce reward models
//
// Losses are normalised over the whole optimizer step: units() counts what the loss averages
// over (loss tokens for SFT, examples for DPO and reward models) for any set of examples, the
// loop sums it over every micro-batch of the step, and forward() divides its summed loss by
// that total. So gradient accumulation and data parallelism give exactly the gradient of one
// big batch, whatever the split: every rank knows the whole step's examples, so every rank
// computes the same normaliser without communicating.
//
// This interface is for one loop family: a static, indexed dataset and one trained module.
// Online RL (PPO/GRPO: rollouts made each step, policy + value + frozen reference models,
// several optimizer steps per rollout batch) is a second family: it does not implement
// Objective but composes the same parts the loop is built from (see train_loop.h).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "losses/logprobs.h"
#include "losses/preference.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/data/batching.h"
#include "trainer/data/token_cache.h"
#include "trainer/dist/communicator.h"
#include "trainer/model/device.h"
#include "trainer/model/llama.h"
#include "trainer/optim/param_shards.h"
#include "trainer/train/recipe.h"

namespace flywheel {

struct MicroBatchResult {
  torch::Tensor loss;                  // scalar: summed loss / normalizer (ready for backward)
  std::map<std::string, double> sums;  // metric sums over this micro-batch's units
  int64_t token_count = 0;             // non-padding tokens processed
};

class Objective {
 public:
  virtual ~Objective() = default;

  virtual int64_t size() const = 0;                  // training examples
  virtual std::vector<int64_t> lengths() const = 0;  // per example, for length grouping
  virtual double units(const std::vector<int64_t>& examples) const = 0;
  virtual MicroBatchResult forward(const std::vector<int64_t>& examples, double normalizer) = 0;
  // The keys forward() puts in `sums`, the same on every rank (metrics are summed across ranks
  // in this order, including on a rank that had no examples in a step).
  virtual std::vector<std::string> metric_names() const = 0;
  // Held-out metrics on the eval file (empty map when there is none).
  virtual std::map<std::string, double> evaluate() = 0;

  virtual torch::nn::Module& model() = 0;
  // The causal LM being trained, for evaluation by generation; null for reward models.
  virtual LlamaForCausalLM* policy() { return nullptr; }
  // The model's parameter shards under ZeRO-3 on several ranks (trainer/train/model_builder.h),
  // else null.
  virtual ParameterShards* parameter_shards() { return nullptr; }
  // Writes the model in Hugging Face format (config.json + safetensors) into `dir`, calling
  // `before` with each parameter as it is written (save_pretrained).
  virtual void save_model(const std::string& dir, const BeforeWrite& before) = 0;
};

// A collated batch moved to the model's device.
inline TokenBatch on_device(TokenBatch b, const torch::Device& device) {
  b.input_ids = to_device(b.input_ids, device);
  b.labels = to_device(b.labels, device);
  b.attention_mask = to_device(b.attention_mask, device);
  b.position_ids = to_device(b.position_ids, device);
  return b;
}

// The decoder's hidden states of the batch's rows [B, T, C]. With share_prefixes, a right-padded
// batch (collate()) whose rows share leading tokens, or are padded far past their ends, goes
// through as a prefix tree (trainer/model/prefix_tree.h): each distinct prefix once, padding
// not at all; taken when that drops a tenth of the tokens, and never for a model with a sliding
// window (the tree attends plain causally).
torch::Tensor decoder_hidden(LlamaForCausalLM& model, const TokenBatch& batch, bool share_prefixes);

// Next-token log-probs of the batch's labels under `model`, through the LM head
// training.logits_chunk_tokens scored tokens at a time (0: all of the logits at once), rows
// sharing prefixes as training.share_prefixes says.
losses::SequenceLogps label_logps(LlamaForCausalLM& model, const TokenBatch& batch,
                                  const TrainingSection& training);

// The DPO-family loss of the recipe's loss section (the dpo trainer's, and online DPO's),
// validated.
losses::PreferenceOptions preference_options(const Recipe& recipe);

// A data file of the recipe as token arrays. With data.token_cache, each node's local rank 0
// tokenizes it into the cache (with all of the node's cores) while the other ranks wait, then
// every rank maps the same file; rank 0 prints the file's report (counts, throughput, cache).
TokenStore load_recipe_data(const Recipe& recipe, ExampleKind kind, const std::string& path,
                            const Tokenizer& tokenizer, Communicator& comm);

// `comm` is the training job's: data statistics are reported by rank 0 only, and DPO's
// reference pass is split across ranks.
std::unique_ptr<Objective> make_sft_objective(const Recipe& recipe, Communicator& comm);
std::unique_ptr<Objective> make_dpo_objective(const Recipe& recipe, bool resume,
                                              Communicator& comm);
std::unique_ptr<Objective> make_reward_objective(const Recipe& recipe, Communicator& comm);

// Dispatches on recipe.trainer.
std::unique_ptr<Objective> make_objective(const Recipe& recipe, bool resume, Communicator& comm);

}  // namespace flywheel
