// Online RL (trainer: ppo | grpo | rloo | online_dpo), a sibling of the supervised loop built
// from the same parts (Optimizer, LrSchedule, Checkpointer, MetricsLog, Periodic):
//
//   setup      prompts (trainer/rl/prompts.h), the policy, a frozen copy of it as the reference
//              (when rl.beta > 0), the rollout engine on the policy's own parameters; ppo: the
//              critic (trainer/rl/value_model.h) with its own optimizer
//   iteration  the next prompts_per_iteration prompts (shuffled once per pass over the file),
//              shared out over the ranks -> group_size responses each (engine; sample j of the
//              iteration's k-th prompt draws from request_seed(iteration seed, k, j), so the
//              responses do not depend on the number of ranks) -> rewards (verifiers and/or a
//              reward model, plus rl.no_eos_penalty for a response cut at max_new_tokens) ->
//              reference log-probs -> advantages:
//                grpo / rloo  within each group (standard, centered or leave-one-out)
//                ppo          the critic's values, the KL penalty folded into per-token rewards,
//                             GAE, whitened over every rank's tokens (trainer/rl/ppo_targets.h)
//              -> epochs x minibatches optimizer steps of the clipped loss (grpo: with the k3 KL
//              term; ppo: then a critic step on the clipped value loss), normalized over each
//              whole minibatch on every rank -> metrics; ppo's adaptive β moves
//              (online_dpo: instead of advantages, each group's best and worst responses form a
//              DPO pair, trained with the loss section's variant against the initial policy or
//              the iteration's own, as rl.reference says)
//   end        final checkpoint, held-out pass rate, the model in model/ (ppo: the critic in
//              value_model/)
//
// The old-policy log-probs are the engine's own (the model's distribution at temperature 1,
// equal to the trainer's forward within 1e-5 in float32), so the first minibatch's ratio is 1.
// Resuming from a checkpoint (policy, critic, optimizers, β) replays the same prompts and
// samples: exact.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "trainer/dist/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/train/recipe.h"
#include "trainer/train/schedule.h"

namespace flywheel {

struct RlOptions {
  bool resume = false;
  Communicator* comm = nullptr;  // null: a single process
  // The arena over the run's iterations (eval.arena), built by the caller on the policy's own
  // weights (so that this loop does not depend on trainer/arena); null: none.
  std::function<StepEvaluation(LlamaForCausalLM policy)> arena;
};

struct RlSummary {
  int64_t iterations = 0;
  std::map<std::string, double> eval_before, eval_after;
  std::map<std::string, double> last;  // the last iteration's metrics
};

// Runs the recipe's RL trainer from scratch or, with options.resume, from its latest checkpoint.
RlSummary run_rl(const Recipe& recipe, const RlOptions& options);

}  // namespace flywheel
