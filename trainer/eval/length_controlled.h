// Win rates against a baseline, raw and length-controlled (LC), as AlpacaEval 2.0 computes them
// (alpaca_eval/metrics/glm_winrate.py; Dubois et al. 2024, "Length-Controlled AlpacaEval").
//
// Raw: the mean preference for the player over its games (a tie counts ½), × 100; its standard
// error is the sample standard error of those preferences (AlpacaEval's `standard_error`).
//
// LC: a judge that prefers longer answers inflates the raw win rate of a verbose player. Each
// player m gets its own GLM over its games against the baseline b (one row per game):
//
//   logit P(m preferred on instruction x) = θ_m + φ_m tanh(Δ / sd_m) + ψ_m γ_x
//
//   Δ = len(b's answer) − len(m's answer)  (baseline minus player, as glm_winrate.py)
//   sd_m = the sample standard deviation (ddof 1) of Δ over m's games
//   γ_x = the instruction's difficulty (below)
//
// fitted as glm_winrate.py fits it: L1-penalized, soft labels, C chosen by 5-fold
// cross-validation (l1_logistic.h). The LC win rate is the fit's prediction had both answers
// been equally long (Δ = 0), averaged over m's instructions and × 100:
// 100 · mean_x logistic(θ_m + ψ_m γ_x). Its standard error is AlpacaEval's
// `lc_standard_error`: 100 × the sample standard error of those per-instruction predictions.
// Each player is fitted alone: with a fixed difficulty table, adding players never moves
// another player's number (a fitted difficulty does depend on the other players' games).
//
// Regularization toward the baseline (AlpacaEval's length_controlled_v1): the games of "gamed"
// players — the baseline itself prompted to be verbose or concise — join every player's fit
// with weight λ / G (G gamed players; AlpacaEval: λ = 0.2 and G = 2) and without the bias
// column, which pulls φ_m and ψ_m toward the baseline's own length sensitivity and stops a
// player from gaining by truncating its answers. Without gamed players the fit is
// AlpacaEval's length_controlled_noreg.
//
// Instruction difficulty γ. AlpacaEval ships a table for its 805 prompts (pass it as
// `difficulty`); it was fitted by the joint GLM of AlpacaEval's instruction_difficulty notebook:
// over all players' games at once, logit = θ_k + φ_k tanh(Δ / sd_k) + γ_x with one γ per
// instruction (one-hot, the instruction whose id sorts first the reference at 0) and ψ fixed at 1.
// For another prompt set Flywheel fits that same joint GLM (the same L1 fit with cross-validated
// C), but for each player from the *other* players' games only (leave one out). Why: γ_x is free
// per instruction, so fitted on the player's own games it can absorb the very outcomes the
// player's GLM then explains with it. Cross-validated shrinkage keeps that leak small — in
// simulations with 800 prompts and 2 or 4 players, γ fitted on all games moved the LC win rate
// by at most 0.2 points against leaving the player out — but leaving out removes it, at the
// cost of one joint fit per player, and a lone player (Flywheel's common case: one checkpoint
// against a baseline) gets γ = 0 by construction, AlpacaEval's length_controlled_minimal. An
// instruction no other player played gets the mean of the fitted difficulties.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/eval/l1_logistic.h"

namespace flywheel {

// One judged game of a player against the baseline.
struct BaselineGame {
  std::string player;          // the model judged against the baseline
  std::string instruction;     // which prompt (a question_id)
  double preference = 0.5;     // 1: player preferred, 0: baseline preferred, 0.5: tie
  double player_length = 0;    // the answers' lengths, in any unit shared by all games
  double baseline_length = 0;  // (AlpacaEval: characters; Arena files: tokens)
};

struct RawWinRate {
  int64_t games = 0, wins = 0, losses = 0, ties = 0;
  double win_rate = 0;        // × 100
  double standard_error = 0;  // × 100; NaN with fewer than two games
};

// The raw win rate of `games` (all of one player's).
RawWinRate raw_win_rate(const std::vector<BaselineGame>& games);

// γ by instruction id.
using InstructionDifficulty = std::map<std::string, double>;

struct LengthControlOptions {
  std::vector<std::string> gamed_players;           // the baseline made verbose / concise
  double gamed_lambda = 0.2;                        // their total weight, λ
  std::optional<InstructionDifficulty> difficulty;  // a fixed table, else fitted (above)
  L1LogisticCvOptions fit;
  // Rate only these players (the others' games still fit their difficulty); empty: all.
  std::vector<std::string> only;
};

struct LengthControlledWinRate {
  std::string player;
  RawWinRate raw;
  double lc_win_rate = 0;        // × 100
  double lc_standard_error = 0;  // × 100; NaN with fewer than two instructions
  double bias = 0;               // θ_m
  double length_weight = 0;      // φ_m, on tanh(Δ / sd_m); negative: longer answers win
  double difficulty_weight = 0;  // ψ_m
  double C = 0;                  // the L1 strength cross-validation chose
  bool converged = true;         // every logistic fit met its tolerance
};

// Δ / sd_m for each game, sd_m over the games of that game's player; 0 where sd_m is not
// defined or zero (fewer than two games, or all lengths equal), which leaves length out.
std::vector<double> standardized_length_deltas(const std::vector<BaselineGame>& games);

// The joint GLM's γ over `games` (all players' games but the one being rated); empty (γ = 0)
// when there are fewer games than cross-validation folds.
InstructionDifficulty fit_instruction_difficulty(const std::vector<BaselineGame>& games,
                                                 const L1LogisticCvOptions& options);

// Raw and LC win rates of every player in `games` (sorted by name). UserError when a gamed
// player has no games, a preference is outside [0, 1], an instruction is missing from a given
// difficulty table, or a player has fewer games (gamed ones included) than folds.
std::vector<LengthControlledWinRate> length_controlled_win_rates(
    const std::vector<BaselineGame>& games, const LengthControlOptions& options);

// ---- games from battle files (trainer/eval/battles.h's rows) ----
//
// Each row's "model_a", "model_b", "winner" (model_a, model_b, tie or "tie (bothbad)"; a tie
// counts ½) and "question_id" (a string or a number; a battle without one is a prompt of its
// own). Rows not involving the baseline are skipped. With need_lengths, both answers' lengths
// too: "style": {"len_a", "len_b"}, or Arena's "conv_metadata": {"sum_assistant_a_tokens",
// "sum_assistant_b_tokens"}. A malformed row is a UserError "PATH:LINE: ...".
struct BaselineGamesRead {
  std::vector<BaselineGame> games;
  int64_t battles = 0;  // rows read, the baseline's or not
};
BaselineGamesRead read_baseline_games(const std::vector<std::string>& paths,
                                      const std::string& baseline, bool need_lengths);

// A question_id as a key: strings as they are, numbers as JSON writes them (as battles.h keys
// prompts); UserError `where` + what was expected otherwise.
std::string instruction_key(const nlohmann::json& v, const std::string& where);

}  // namespace flywheel
