#include "trainer/arena/judges.h"

#include <array>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include "trainer/core/error.h"
#include "trainer/data/examples.h"
#include "trainer/model/model_config.h"
#include "verifiers/reward_model/reward_scorer.h"

namespace flywheel {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::string matchup_name(const Matchup& m) {
  return "question " + m.player->question_id + " (" + m.player->player + " vs " +
         m.baseline->player + ")";
}

// A verdict that is not a judge's text: the score comparison of a reward model or verifier.
ParsedVerdict decided(Outcome outcome, const char* label) {
  ParsedVerdict p;
  p.verdict = JudgeVerdict{outcome, false, label};
  p.problem = VerdictProblem::kNone;
  return p;
}

// The tokens reward training saw for (prompt, answer): a user turn and an assistant turn
// through the template, or plain text with "raw".
std::vector<int64_t> rm_tokens(const ArenaAnswer& a, const Tokenizer& tokenizer,
                               const std::string& chat_template) {
  DataOptions data;
  json record;
  if (chat_template == "raw") {
    if (!a.text_prompt)
      throw UserError("question " + a.question_id +
                      ": a conversation needs a chat template (--rm-chat-template), not raw");
    record = {{"prompt", a.messages[0]["content"]}, {"completion", a.answer}};
  } else {
    data.chat_template = chat_template;
    record = {{"prompt", a.messages},
              {"completion", json::array({{{"role", "assistant"}, {"content", a.answer}}})}};
  }
  try {
    return encode_sft_record(record, tokenizer, data).ids;
  } catch (const UserError& e) {
    throw UserError("question " + a.question_id + " (" + a.player + "): " + e.what());
  }
}

std::vector<JudgedGame> judge_with_reward_model(const std::string& dir,
                                                const std::vector<Matchup>& matchups,
                                                const JudgeOptions& options) {
  const auto config = load_model_config((std::filesystem::path(dir) / "config.json").string());
  if (!config.is_sequence_classification())
    throw UserError("--judge rm:" + dir +
                    ": not a reward model (config.json's architectures name no "
                    "*ForSequenceClassification)");
  const Tokenizer tokenizer = Tokenizer::from_dir(dir);
  RewardScorer scorer(load_reward_model(dir, options.load.dtype.value_or(config.dtype),
                                        options.load.device, /*init_std=*/0.0, /*seed=*/0),
                      tokenizer, RewardScorerOptions{});
  // Each distinct token sequence is scored once, however many matchups hold it (the
  // baseline's answers are in all; two players with the same answer tie exactly).
  std::map<const ArenaAnswer*, size_t> index;
  std::map<std::vector<int64_t>, size_t> seen;
  std::vector<std::vector<int64_t>> sequences;
  for (const auto& m : matchups) {
    for (const ArenaAnswer* a : {m.baseline, m.player}) {
      if (index.contains(a)) continue;
      std::vector<int64_t> ids = rm_tokens(*a, tokenizer, options.rm_chat_template);
      if (std::ssize(ids) > config.max_position_embeddings)
        throw UserError(matchup_name(m) + ": " + a->player + "'s answer is " +
                        std::to_string(ids.size()) + " tokens with its prompt, more than the " +
                        "reward model's " + std::to_string(config.max_position_embeddings));
      const auto [it, added] = seen.try_emplace(ids, sequences.size());
      if (added) sequences.push_back(std::move(ids));
      index[a] = it->second;
    }
  }
  const std::vector<double> scores = scorer.score(sequences);
  std::vector<JudgedGame> games;
  for (const auto& m : matchups) {
    JudgedGame g;
    g.a = m.baseline;
    g.b = m.player;
    const double sa = scores[index[m.baseline]], sb = scores[index[m.player]];
    const double diff = sa - sb;
    g.verdict = std::abs(diff) <= options.tie_band ? decided(Outcome::kTie, "A=B")
                : diff > 0                         ? decided(Outcome::kA, "A>B")
                                                   : decided(Outcome::kB, "B>A");
    g.details = {{"score_a", sa}, {"score_b", sb}};
    games.push_back(std::move(g));
  }
  return games;
}

std::string ground_truth_text(const json& gt) {
  return gt.is_string() ? gt.get<std::string>() : gt.dump();
}

std::vector<JudgedGame> judge_with_verifier(const std::string& name,
                                            const std::vector<Matchup>& matchups,
                                            const JudgeOptions& options) {
  const VerifierInfo& verifier = find_verifier(name);
  std::vector<JudgedGame> games;
  for (const auto& m : matchups) {
    const json& gt =
        m.baseline->ground_truth.is_null() ? m.player->ground_truth : m.baseline->ground_truth;
    if (gt.is_null())
      throw UserError(matchup_name(m) +
                      ": no \"ground_truth\" (give it in the prompts file of `arena answer`)");
    bool correct[2] = {false, false};
    int side = 0;
    for (const ArenaAnswer* a : {m.baseline, m.player}) {
      const Verdict v = verify(
          verifier, {question_text(a->messages), a->answer, ground_truth_text(gt), json::object()},
          options.verify);
      if (!v.correct)
        throw UserError(matchup_name(m) + ": the " + verifier.name +
                        " verifier does not apply to ground truth " + gt.dump());
      correct[side++] = *v.correct;
    }
    JudgedGame g;
    g.a = m.baseline;
    g.b = m.player;
    g.verdict = correct[0] && correct[1] ? decided(Outcome::kTie, "A=B")
                : correct[0]             ? decided(Outcome::kA, "A>B")
                : correct[1]             ? decided(Outcome::kB, "B>A")
                                         : decided(Outcome::kTieBothBad, "bothbad");
    g.details = {{"correct_a", correct[0]}, {"correct_b", correct[1]}};
    games.push_back(std::move(g));
  }
  return games;
}

std::vector<JudgedGame> judge_with_llm(const std::string& dir, const std::vector<Matchup>& matchups,
                                       const JudgeOptions& options) {
  check_judge_template(options.judge_template, "--judge-template");
  ChatModel judge(dir, options.load);
  std::vector<JudgedGame> games;
  std::vector<ordered_json> prompts;
  std::vector<std::string> where;
  for (const auto& m : matchups) {
    const std::string question = question_text(m.baseline->messages);
    for (int game = 1; game <= 2; ++game) {
      JudgedGame g;
      g.a = game == 1 ? m.baseline : m.player;
      g.b = game == 1 ? m.player : m.baseline;
      g.game = game;
      prompts.push_back(
          ordered_json::array({{{"role", "user"},
                                {"content", fill_judge_template(options.judge_template, question,
                                                                g.a->answer, g.b->answer)}}}));
      where.push_back(matchup_name(m) + ", game " + std::to_string(game));
      games.push_back(std::move(g));
    }
  }
  const std::vector<Completion> outputs = judge.reply(prompts, where, options.reply);
  for (size_t i = 0; i < games.size(); ++i) {
    games[i].verdict = parse_verdict(outputs[i].text, options.verdict_format);
    games[i].details = {{"output", outputs[i].text}, {"finish_reason", outputs[i].finish_reason}};
  }
  return games;
}

}  // namespace

JudgeSpec parse_judge_spec(const std::string& text) {
  const size_t colon = text.find(':');
  const std::string kind = colon == std::string::npos ? "" : text.substr(0, colon);
  JudgeSpec spec;
  spec.text = text;
  spec.target = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (kind == "rm") {
    spec.kind = JudgeKind::kRewardModel;
  } else if (kind == "verifier") {
    spec.kind = JudgeKind::kVerifier;
  } else if (kind == "llm") {
    spec.kind = JudgeKind::kLlm;
  } else {
    throw UserError("--judge: expected rm:DIR, verifier:NAME or llm:DIR, got '" + text + "'");
  }
  if (spec.target.empty()) throw UserError("--judge " + text + ": nothing after '" + kind + ":'");
  return spec;
}

std::vector<JudgedGame> judge_matchups(const JudgeSpec& judge, const std::vector<Matchup>& matchups,
                                       const JudgeOptions& options) {
  switch (judge.kind) {
    case JudgeKind::kRewardModel:
      return judge_with_reward_model(judge.target, matchups, options);
    case JudgeKind::kVerifier:
      return judge_with_verifier(judge.target, matchups, options);
    case JudgeKind::kLlm:
      return judge_with_llm(judge.target, matchups, options);
  }
  return {};
}

CascadeResult judge_cascade(const std::vector<CascadeStage>& stages,
                            const std::vector<Matchup>& matchups, const JudgeOptions& options,
                            const CascadeOptions& cascade) {
  if (stages.empty()) throw UserError("a judge cascade needs at least one judge");
  if (cascade.annotators < 1) throw UserError("--annotators must be >= 1");
  check_judge_template(options.judge_template, "--judge-template");
  CascadeResult result;
  std::vector<const Matchup*> open;  // not decided yet
  for (const auto& m : matchups)
    open.push_back(&m);
  std::map<const Matchup*, JudgedGame> decided_games;
  const int64_t n = cascade.annotators;
  for (size_t k = 0; k < stages.size() && !open.empty(); ++k) {
    const CascadeStage& stage = stages[k];
    if (stage.judge.kind != JudgeKind::kLlm) {
      throw UserError("--judge " + stage.judge.text +
                      ": a cascade's judges are LLM judges (llm:DIR), whose confidence comes "
                      "from their sampled verdicts");
    }
    ChatModel judge(stage.judge.target, options.load);
    // Each matchup's prompt in both orders, each `n` times: request seeds differ by index.
    std::vector<ordered_json> prompts;
    std::vector<std::string> where;
    for (const Matchup* m : open) {
      const std::string question = question_text(m->baseline->messages);
      for (int order = 0; order < 2; ++order) {
        const ArenaAnswer* a = order == 0 ? m->baseline : m->player;
        const ArenaAnswer* b = order == 0 ? m->player : m->baseline;
        const ordered_json prompt =
            ordered_json::array({{{"role", "user"},
                                  {"content", fill_judge_template(options.judge_template, question,
                                                                  a->answer, b->answer)}}});
        for (int64_t j = 0; j < n; ++j) {
          prompts.push_back(prompt);
          where.push_back(matchup_name(*m) + ", order " + std::to_string(order + 1));
        }
      }
    }
    ReplyOptions reply = options.reply;
    reply.sampling.temperature = cascade.temperature;
    const std::vector<Completion> outputs = judge.reply(prompts, where, reply);
    const bool last = k + 1 == stages.size();
    std::vector<const Matchup*> next;
    result.asked.push_back(std::ssize(open));
    result.trusted.push_back(0);
    for (size_t i = 0; i < open.size(); ++i) {
      std::vector<Preference> votes[2];
      std::array<int64_t, 3> counts{};  // for the baseline, for the player, ties
      for (int order = 0; order < 2; ++order) {
        for (int64_t j = 0; j < n; ++j) {
          const auto& text =
              outputs[static_cast<size_t>((static_cast<int64_t>(i) * 2 + order) * n + j)].text;
          const ParsedVerdict v = parse_verdict(text, options.verdict_format);
          if (!v.verdict) continue;
          const Outcome o = v.verdict->outcome;
          const Preference p = o == Outcome::kA   ? Preference::kFirst
                               : o == Outcome::kB ? Preference::kSecond
                                                  : Preference::kTie;
          votes[order].push_back(p);
          ++counts[p == Preference::kTie ? 2 : (p == Preference::kFirst) == (order == 0) ? 0 : 1];
        }
      }
      std::optional<Consensus> consensus;
      if (!votes[0].empty() || !votes[1].empty())
        consensus = simulated_annotator_confidence(votes[0], votes[1]);
      const bool trusted = consensus && consensus->confidence >= stage.trust;
      if (!trusted && !(last && cascade.last_decides && consensus)) {
        next.push_back(open[i]);
        continue;
      }
      result.trusted.back() += trusted;
      JudgedGame g;
      g.a = open[i]->baseline;
      g.b = open[i]->player;
      g.verdict = consensus->majority == Preference::kFirst    ? decided(Outcome::kA, "A>B")
                  : consensus->majority == Preference::kSecond ? decided(Outcome::kB, "B>A")
                                                               : decided(Outcome::kTie, "A=B");
      g.details = {
          {"stage", static_cast<int64_t>(k) + 1},
          {"judge", stage.judge.text},
          {"confidence", consensus->confidence},
          {"trusted", trusted},
          {"annotators", n},
          {"votes", {{g.a->player, counts[0]}, {g.b->player, counts[1]}, {"tie", counts[2]}}}};
      decided_games.emplace(open[i], std::move(g));
    }
    open = std::move(next);
  }
  result.abstained = std::ssize(open);
  for (const auto& m : matchups) {
    if (auto it = decided_games.find(&m); it != decided_games.end())
      result.games.push_back(std::move(it->second));
  }
  return result;
}

}  // namespace flywheel
