#include "trainer/train/objective.h"

#include "trainer/core/error.h"

namespace flywheel {

losses::SequenceLogps label_logps(LlamaForCausalLM& model, const TokenBatch& batch,
                                  int64_t logits_chunk_tokens) {
  const auto hidden = model->model->forward(
      {batch.input_ids, batch.position_ids, batch.attention_mask});  // [B, T, C]
  return losses::sequence_logps(hidden, model->head_weight(), batch.labels, logits_chunk_tokens);
}

std::unique_ptr<Objective> make_objective(const Recipe& recipe, bool resume, Communicator& comm) {
  if (recipe.trainer == "sft") return make_sft_objective(recipe, comm);
  if (recipe.trainer == "dpo") return make_dpo_objective(recipe, resume, comm);
  if (recipe.trainer == "reward_model") return make_reward_objective(recipe, comm);
  throw UserError(recipe.source + ": unknown trainer '" + recipe.trainer + "'");
}

}  // namespace flywheel
