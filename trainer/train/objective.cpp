#include "trainer/train/objective.h"

#include <cstdio>
#include <thread>

#include "trainer/core/error.h"
#include "trainer/model/prefix_tree.h"

namespace flywheel {

TokenStore load_recipe_data(const Recipe& recipe, ExampleKind kind, const std::string& path,
                            const Tokenizer& tokenizer, Communicator& comm) {
  TokenCacheOptions cache;
  if (recipe.data.token_cache) {
    cache.dir = recipe.data.cache_dir.empty() ? default_token_cache_dir() : recipe.data.cache_dir;
  }
  cache.tokenizer_dir = recipe.model.tokenizer;
  // The builder has the node's cores to itself; without a cache every rank tokenizes at once.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cache.threads = std::max(1, cache.dir.empty() ? cores / comm.world().local_world_size : cores);
  const bool builder = cache.dir.empty() || comm.world().local_rank == 0;
  LoadedTokens loaded;
  if (builder) loaded = load_tokens(kind, path, tokenizer, recipe.data.options, cache);
  if (!cache.dir.empty()) {
    comm.barrier();  // the node's cache is written
    if (!builder) loaded = load_tokens(kind, path, tokenizer, recipe.data.options, cache);
  }
  if (comm.is_main()) std::fprintf(stderr, "%s\n", loaded.report.c_str());
  return std::move(loaded.store);
}

torch::Tensor decoder_hidden(LlamaForCausalLM& model, const TokenBatch& batch,
                             bool share_prefixes) {
  // The tree attends plain causally: a sliding window's mask is the whole rows' path's.
  if (share_prefixes && batch.right_padded && batch.attention_mask.dim() == 2 &&
      batch.token_count > 0 && !model->config().sliding_window) {
    auto tree = prefix_tree(batch.input_ids, batch.attention_mask);
    // Its gathers copy q, k and v once more a layer: taken when it drops a tenth of the tokens.
    if (10 * tree.size() <= 9 * batch.input_ids.numel()) {
      PrefixTreeAttention attention(tree);
      return tree.to_rows(
          model->model->forward(DecoderInput(tree.tokens, tree.positions, {}, &attention)));
    }
  }
  DecoderInput in(batch.input_ids, batch.position_ids, batch.attention_mask);
  in.right_padded = batch.right_padded;  // padded positions are never scored
  return model->model->forward(in);
}

losses::SequenceLogps label_logps(LlamaForCausalLM& model, const TokenBatch& batch,
                                  const TrainingSection& training) {
  return losses::sequence_logps(decoder_hidden(model, batch, training.share_prefixes),
                                model->head_weight(), batch.labels, training.logits_chunk_tokens);
}

losses::PreferenceOptions preference_options(const Recipe& recipe) {
  losses::PreferenceOptions options;
  options.type = losses::parse_preference_loss_type(recipe.loss.type);
  options.beta = recipe.loss.beta;
  options.label_smoothing = recipe.loss.label_smoothing;
  options.gamma_beta_ratio = recipe.loss.gamma_beta_ratio;
  options.rpo_alpha = recipe.loss.rpo_alpha;
  options.validate();
  return options;
}

std::unique_ptr<Objective> make_objective(const Recipe& recipe, bool resume, Communicator& comm) {
  if (recipe.trainer == "sft") return make_sft_objective(recipe, comm);
  if (recipe.trainer == "dpo") return make_dpo_objective(recipe, resume, comm);
  if (recipe.trainer == "reward_model") return make_reward_objective(recipe, comm);
  throw UserError(recipe.source + ": unknown trainer '" + recipe.trainer + "'");
}

}  // namespace flywheel
