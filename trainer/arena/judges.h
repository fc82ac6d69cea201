// Judges for `flywheel arena judge`: each turns matchups (a player's and the baseline's answers
// to one question) into judged games (trainer/eval/judged_games.h).
//
//   rm:DIR         a *ForSequenceClassification reward model scores each answer alone (prompt +
//                  answer, as reward training tokenized them); the higher score wins, a tie when
//                  |score_a - score_b| <= tie_band. One game per matchup.
//   verifier:NAME  a rule-based checker (verifiers/verifier.h: gsm8k, math, ...) against the
//                  prompts' ground_truth: the answer that verifies wins; both: tie; neither:
//                  tie (bothbad). One game per matchup.
//   llm:DIR        a model Flywheel loads reads both answers in a pairwise prompt and writes a
//                  verdict (trainer/eval/verdicts.h), greedily. Two games per matchup, the
//                  baseline shown first and then second, so its position bias can be measured
//                  and averaged out.
#pragma once

#include <string>
#include <vector>

#include "trainer/arena/chat_model.h"
#include "trainer/eval/calibration.h"
#include "trainer/eval/judged_games.h"
#include "verifiers/verifier.h"

namespace flywheel {

enum class JudgeKind { kRewardModel, kVerifier, kLlm };

struct JudgeSpec {
  JudgeKind kind = JudgeKind::kLlm;
  std::string target;  // the directory, or the verifier's name
  std::string text;    // as given ("rm:runs/rm/final"), the battles' "judge"
};

// "rm:DIR", "verifier:NAME" or "llm:DIR"; UserError naming --judge otherwise.
JudgeSpec parse_judge_spec(const std::string& text);

struct Matchup {
  const ArenaAnswer* baseline = nullptr;
  const ArenaAnswer* player = nullptr;
};

struct JudgeOptions {
  LoadOptions load;  // reward and LLM judges' dtype and device
  // rm: scores closer than this are a tie.
  double tie_band = 0;
  // rm: the template the reward model was trained with; "raw": prompt and answer as plain text
  // (text prompts only), as the SFT loader reads {"prompt", "completion"} strings.
  std::string rm_chat_template = kAutoChatTemplate;
  // verifier: bounds on each check.
  VerifyOptions verify;
  // llm: the prompt ({question}, {answer_a}, {answer_b}), how its verdict reads, and how the
  // judge generates (greedy by default, as MT-Bench and Arena-Hard judge at temperature 0).
  std::string judge_template = default_judge_template();
  VerdictFormat verdict_format = VerdictFormat::kMtBench;
  ReplyOptions reply = llm_reply_defaults();

  static ReplyOptions llm_reply_defaults() {
    ReplyOptions r;
    r.max_new_tokens = 512;
    return r;
  }
};

// The games of every matchup, in matchup order: one each for rm and verifier, two for llm
// (game 1 with the baseline as A, then game 2 swapped).
std::vector<JudgedGame> judge_matchups(const JudgeSpec& judge, const std::vector<Matchup>& matchups,
                                       const JudgeOptions& options);

// ---- a cascade of LLM judges with calibrated abstention (Trust or Escalate) ----
//
// Each stage is an LLM judge and the threshold λ `arena calibrate` found for it. A stage asks
// its judge `annotators` times in each order (sampled at `temperature`: the simulated
// annotators) and takes their consensus (trainer/eval/calibration.h,
// simulated_annotator_confidence; unparseable replies are no vote). A matchup whose
// confidence reaches the stage's λ is decided there; the others go on to the next stage, and
// after the last one they are abstained on (or, with last_decides, the last stage's majority
// stands). Each decided matchup is one game, the baseline shown as A, its details naming the
// stage, the confidence and the votes.
struct CascadeStage {
  JudgeSpec judge;
  double trust = 0;  // λ
};

struct CascadeOptions {
  int64_t annotators = 5;    // replies per order
  double temperature = 1.0;  // how they are sampled
  bool last_decides = false;
};

struct CascadeResult {
  std::vector<JudgedGame> games;        // the decided matchups, in matchup order
  std::vector<int64_t> asked, trusted;  // per stage: matchups it judged, and decided
  int64_t abstained = 0;
};

// UserError when a stage is not an LLM judge, or for the errors judge_matchups gives.
CascadeResult judge_cascade(const std::vector<CascadeStage>& stages,
                            const std::vector<Matchup>& matchups, const JudgeOptions& options,
                            const CascadeOptions& cascade);

}  // namespace flywheel
