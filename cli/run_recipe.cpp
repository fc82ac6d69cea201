#include "cli/run_recipe.h"

#include <cstdio>
#include <memory>
#include <optional>

#include "rollout/generation_eval.h"
#include "trainer/arena/run_arena.h"
#include "trainer/core/error.h"
#include "trainer/rl/rl_loop.h"
#include "trainer/train/objective.h"
#include "trainer/train/train_loop.h"
#include "verifiers/verifier.h"

namespace flywheel::cli {

RecipeResult run_recipe(const Recipe& recipe, bool resume, Communicator& comm) {
  // The arena (eval.arena) runs on rank 0, on the policy's own weights; every rank checks it
  // first, so that a mistake stops them all.
  if (recipe.eval.arena.enabled()) RunArena::check(recipe);
  std::unique_ptr<RunArena> arena;
  const auto make_arena = [&](LlamaForCausalLM policy) {
    if (!recipe.eval.arena.enabled()) return StepEvaluation{};
    if (!comm.is_main()) return RunArena::follower_hook(recipe);
    if (const auto warning = arena_judge_warning(recipe); !warning.empty())
      std::fprintf(stderr, "warning: %s\n", warning.c_str());
    arena = std::make_unique<RunArena>(recipe, std::move(policy));
    return arena->hook();
  };
  if (recipe.is_rl()) {
    const auto summary = run_rl(recipe, {.resume = resume, .comm = &comm, .arena = make_arena});
    return {summary.eval_before, summary.eval_after};
  }
  auto objective = make_objective(recipe, resume, comm);
  TrainOptions options;
  options.resume = resume;
  options.comm = &comm;
  if (recipe.eval.arena.enabled()) {
    LlamaForCausalLM* policy = objective->policy();
    if (policy == nullptr) {
      throw UserError(recipe.source +
                      ": eval.arena needs a generating model (trainer: " + recipe.trainer + ")");
    }
    options.arena = make_arena(*policy);
  }

  // Held-out accuracy by generation, when the recipe asks for it.
  std::optional<Tokenizer> tokenizer;
  std::vector<GenerationEvalItem> items;
  if (!recipe.eval.generation_file.empty()) {
    LlamaForCausalLM* policy = objective->policy();
    if (policy == nullptr) {
      throw UserError(recipe.source + ": eval.generation_file needs a generating model (trainer: " +
                      recipe.trainer + ")");
    }
    const VerifierInfo& checker = find_verifier(recipe.eval.verifier);
    // Accuracy: a correct answer scores 1, a wrong one 0; rows the checker does not apply to
    // are left out.
    const ScoreFn verifier = [&checker](const std::string& response, const std::string& truth) {
      VerifyInput input;
      input.response = response;
      input.ground_truth = truth;
      const Verdict v = verify(checker, input);
      return v.correct ? std::optional<double>(*v.correct ? 1.0 : 0.0) : std::nullopt;
    };
    tokenizer.emplace(Tokenizer::from_dir(recipe.model.tokenizer));
    items = load_generation_eval(recipe.eval.generation_file, *tokenizer,
                                 recipe.data.options.chat_template, recipe.data.options.add_bos,
                                 recipe.eval.max_samples);
    const GenerationEvalOptions gen{recipe.eval.max_new_tokens, recipe.eval.batch_size};
    options.extra_eval = [&, policy, verifier, gen] {
      std::map<std::string, double> out;
      for (const auto& [k, v] : evaluate_generation(*policy, *tokenizer, items, verifier, gen)) {
        out["generation/" + k] = v;
      }
      return out;
    };
  }
  const auto summary = run_training(recipe, *objective, options);
  return {summary.eval_before, summary.eval_after};
}

}  // namespace flywheel::cli
