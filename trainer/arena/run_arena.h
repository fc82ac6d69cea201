// The arena inside a training run (a recipe's `eval.arena`), over the run's own checkpoints:
//
//   start      the baselines answer the prompts once (cached, as `arena answer` caches them)
//   each round the policy at step N answers the prompts with the rollout engine on its own
//              weights (player "step-N"), plays every baseline and the earlier checkpoints
//              (eval.arena.previous_checkpoints of them, or all), judged as `arena judge` does
//              (a reward model, a verifier, an LLM in both orders, or a cascade of LLM judges);
//              then every battle of the run so far is rated together, with one fixed anchor
//              (Bradley–Terry, with Chatbot Arena's style control if asked; bootstrap intervals
//              over whole prompts, or single battles), so earlier checkpoints' ratings move as
//              evidence accumulates and stay on one scale
//   metrics    the round's checkpoint: arena/rating, arena/lower, arena/upper, arena/rank, its
//              raw and length-controlled win rate against the baseline (AlpacaEval's GLM,
//              trainer/eval/length_controlled.h), the judge's abstention rate (unparseable
//              games, or a cascade's abstained matchups), into metrics.jsonl's eval line
//   keep_best  checkpoint.keep_best: arena keeps the highest-rated checkpoint after step 0 among
//              those still on disk (a refit can prefer one pruned while it was not the best)
//
// Rank 0 plays the rounds while the other ranks wait in their next collective, for at most
// distributed.timeout_s: a run whose rounds take longer (LLM judges, cascades) needs a longer
// timeout.
//
// OUTPUT_DIR/arena/ holds answers/<player>.jsonl, battles.jsonl (Chatbot Arena's format, what
// `arena rate` reads), ratings.json (the leaderboard plus "steps": rating by step, and "best"),
// leaderboard.md, ratings.png and ratings_by_step.png (gnuplot). A resumed run forgets the rounds
// after its checkpoint and plays them again: the same battles with greedy answers (the default)
// and a reward-model or verifier judge; sampled answers and LLM judges draw from their seeds, so
// they repeat too, to the engine's float rounding.
//
// A policy's prompt is read as the training run reads it: a text prompt as plain text (BOS +
// its tokens, as the RL loop and the SFT loader read a "prompt" string), a conversation through
// data.chat_template; the baselines read them the same way, so that a baseline that is the
// starting model answers exactly as step 0 does.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trainer/arena/chat_model.h"
#include "trainer/arena/judges.h"
#include "trainer/eval/answers.h"
#include "trainer/train/recipe.h"
#include "trainer/train/schedule.h"

namespace flywheel {

class RunArena {
 public:
  // UserError for an arena the recipe cannot run: prompts that do not parse, an unknown
  // verifier, a judge template without verdicts, plots without gnuplot. Every rank runs it
  // before the model loads, so that all of them stop with the error.
  static void check(const Recipe& recipe);

  // check(), then the arena of the run on `policy` (rank 0's).
  RunArena(const Recipe& recipe, LlamaForCausalLM policy);

  // Round `step`: answers, games, ratings, files; the metrics of step's checkpoint.
  Metrics evaluate(int64_t step);
  // A run resumed at `step`: the rounds after it are forgotten.
  void resume_at(int64_t step);
  // The highest-rated step after step 0, once one has been rated.
  std::optional<int64_t> best_step() const { return best_; }

  // The hook the training loops take (trainer/train/schedule.h). The arena must outlive it.
  StepEvaluation hook();
  // The same schedule for the ranks that do not run the arena (rank 0 does): every rank must
  // agree on when a rated step is checkpointed.
  static StepEvaluation follower_hook(const Recipe& recipe);

 private:
  struct Rated;
  static std::string player_of(int64_t step);
  void answer_baselines();
  const std::map<std::string, ArenaAnswer>& answers_of(const std::string& player);
  std::vector<std::string> opponents(int64_t step) const;
  Metrics judge_round(int64_t step, const std::vector<std::string>& opponents);
  Rated rate(int bootstrap_rounds) const;
  std::optional<int64_t> best_of(const Rated& rated, std::optional<int64_t> saving) const;
  void write_reports(const Rated& rated) const;

  ArenaSection arena_;
  std::string dir_;          // OUTPUT_DIR/arena
  std::string checkpoints_;  // OUTPUT_DIR/checkpoints
  int64_t every_ = 0;
  bool keep_best_ = false;
  uint64_t seed_ = 0;
  ChatModel policy_;
  std::vector<ArenaPrompt> prompts_;
  ReplyOptions reply_;
  LoadOptions load_;
  JudgeOptions judge_options_;
  std::vector<std::pair<std::string, std::string>> baselines_;  // name, model directory
  std::string anchor_;
  double anchor_rating_ = 1000;
  std::string lc_baseline_;     // "" without baselines
  std::vector<int64_t> steps_;  // rated so far, ascending
  std::map<std::string, std::map<std::string, ArenaAnswer>> answers_;
  std::optional<int64_t> best_;
};

// A warning when the arena's judge is the training run's own reward (rl.reward_model, or a
// verifier the run rewards with: rl.verifier, else a training row's "dataset"): the arena then
// measures what the policy was optimized against, not an independent view of it. Empty when
// they differ.
std::string arena_judge_warning(const Recipe& recipe);

}  // namespace flywheel
