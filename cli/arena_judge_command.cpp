// `flywheel arena judge --answers DIR --judge SPEC --baseline NAME [--out FILE.jsonl]`: every
// player cached in DIR/answers meets the baseline on every question, judged by a reward model,
// a verifier or an LLM (trainer/arena/judges.h; an LLM in both orders), written as battles in
// Chatbot Arena's format that `arena rate` and `arena winrate` read. Games without a verdict
// are counted and reported, never written; the judge's position bias (first-position win rate,
// consistency under swap) and length bias (the longer answer's win rate, by how much longer)
// are printed and, with --stats, written as JSON.
#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/arena/judges.h"
#include "trainer/core/error.h"
#include "trainer/model/device.h"
#include "trainer/model/model_config.h"

namespace flywheel::cli {
namespace {

using nlohmann::ordered_json;

constexpr const char* kCommand = "arena judge";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(std::string("flywheel ") + kCommand + ": cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Model text may hold bytes that are not UTF-8; they are written as U+FFFD, not an exception.
std::string json_line(const ordered_json& j) {
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

// The template and verdict format of an LLM judge: --judge-template's file (its format read
// off its own instructions unless --verdict-format says) or the built-in MT-Bench-style one.
void llm_prompt_options(const Args& args, JudgeOptions* options) {
  if (auto path = args.get("judge-template")) {
    options->judge_template = read_text(*path);
    check_judge_template(options->judge_template, *path);
  }
  if (auto f = args.get("verdict-format")) {
    options->verdict_format = parse_verdict_format(*f, "--verdict-format");
  } else if (auto f = template_verdict_format(options->judge_template)) {
    options->verdict_format = *f;
  } else {
    throw UserError(std::string("flywheel ") + kCommand + ": " +
                    args.get("judge-template").value_or("the template") +
                    " shows neither [[A]] (mt-bench) nor [[A>B]] (arena-hard); give "
                    "--verdict-format");
  }
}

// Every player's matchups against the baseline, question by question.
std::vector<Matchup> matchups_of(
    const std::map<std::string, std::map<std::string, ArenaAnswer>>& all,
    const std::string& baseline, const std::string& dir) {
  const auto& base = all.at(baseline);
  std::vector<Matchup> matchups;
  for (const auto& [player, answers] : all) {
    if (player == baseline) continue;
    for (const auto& [qid, b] : base) {
      const auto it = answers.find(qid);
      if (it == answers.end())
        throw UserError(answers_path(dir, player) + ": no answer to question " + qid +
                        " (the baseline answered it; rerun `arena answer` with the same prompts)");
      matchups.push_back({&b, &it->second});
    }
  }
  return matchups;
}

void print_stats(const JudgeSpec& judge, const JudgeStats& s, bool swapped) {
  std::fprintf(stderr, "arena judge: %s: %lld games, %lld parsed, %lld unparseable",
               judge.text.c_str(), static_cast<long long>(s.games),
               static_cast<long long>(s.parsed), static_cast<long long>(s.unparseable()));
  if (s.unparseable() > 0)
    std::fprintf(stderr, " (no verdict %lld, ambiguous %lld, unknown label %lld)",
                 static_cast<long long>(s.no_verdict), static_cast<long long>(s.ambiguous),
                 static_cast<long long>(s.unknown_label));
  std::fputs("\n", stderr);
  const auto rate = [](std::optional<double> r) {
    char buf[32];
    if (!r) return std::string("n/a");
    std::snprintf(buf, sizeof buf, "%.3f", *r);
    return std::string(buf);
  };
  std::fprintf(stderr, "arena judge: length bias: the longer answer's win rate %s;",
               rate(s.longer_win_rate()).c_str());
  for (int b = 0; b < JudgeStats::kLengthBins; ++b) {
    std::fprintf(stderr, " %d-%d%% longer: %s (%lld)", 100 * b / JudgeStats::kLengthBins,
                 100 * (b + 1) / JudgeStats::kLengthBins, rate(s.longer_win_rate(b)).c_str(),
                 static_cast<long long>(s.by_length_games[static_cast<size_t>(b)]));
  }
  std::fprintf(stderr, "; equal lengths %lld\n", static_cast<long long>(s.equal_length));
  if (!swapped) return;
  std::fprintf(stderr,
               "arena judge: position bias: first-position win rate %s (0.5 = none), "
               "consistency under swap %s (%lld of %lld meetings with both orders parsed)\n",
               rate(s.first_position_win_rate()).c_str(), rate(s.consistency_rate()).c_str(),
               static_cast<long long>(s.consistent), static_cast<long long>(s.both_parsed));
}

// The cascade's battles, judgments and statistics (trainer/arena/judges.h, judge_cascade).
int run_cascade(const Args& args, const std::string& dir, const std::vector<std::string>& judges,
                const std::string& baseline, const std::vector<Matchup>& matchups,
                const JudgeOptions& options) {
  const std::vector<std::string> trusts = args.get_all("trust");
  if (trusts.size() != judges.size()) {
    throw UserError(
        std::string("flywheel ") + kCommand + ": a cascade of " + std::to_string(judges.size()) +
        " judges needs as many --trust thresholds, got " + std::to_string(trusts.size()));
  }
  std::vector<CascadeStage> stages;
  for (size_t k = 0; k < judges.size(); ++k) {
    CascadeStage stage{parse_judge_spec(judges[k]), 0};
    try {
      size_t used = 0;
      stage.trust = std::stod(trusts[k], &used);
      if (used != trusts[k].size()) throw std::invalid_argument(trusts[k]);
    } catch (const std::exception&) {
      throw UserError(std::string("flywheel ") + kCommand + ": --trust expects a number, got '" +
                      trusts[k] + "'");
    }
    if (!(stage.trust >= 0 && stage.trust <= 1))
      throw UserError(std::string("flywheel ") + kCommand + ": --trust must be in [0, 1]");
    stages.push_back(std::move(stage));
  }
  CascadeOptions cascade;
  cascade.annotators = args.get_int("annotators", 5, 1);
  cascade.temperature = args.get_double("annotator-temperature", 1.0);
  if (!(cascade.temperature > 0))
    throw UserError(std::string("flywheel ") + kCommand + ": --annotator-temperature must be > 0");
  cascade.last_decides = args.flag("last-judge-decides");
  const CascadeResult result = judge_cascade(stages, matchups, options, cascade);

  std::string name = "cascade";
  for (const auto& j : judges)
    name += (name == "cascade" ? ":" : ",") + j;
  JudgeStats stats;
  std::string battles, judgments;
  for (const JudgedGame& g : result.games) {
    stats.add_game(g);
    battles += json_line(battle_json(g, name));
    judgments += json_line(judgment_json(g, name));
  }
  const std::string out = args.get("out").value_or(dir + "/battles.jsonl");
  write_file_atomic(out, battles);
  if (auto path = args.get("judgments")) write_file_atomic(*path, judgments);
  const auto total = std::ssize(matchups);
  const double abstention =
      total > 0 ? static_cast<double>(result.abstained) / static_cast<double>(total) : 0.0;
  ordered_json stages_json = ordered_json::array();
  for (size_t k = 0; k < stages.size(); ++k) {
    std::fprintf(stderr, "arena judge: stage %zu %s (trust %g): %lld matchups, %lld decided\n",
                 k + 1, stages[k].judge.text.c_str(), stages[k].trust,
                 static_cast<long long>(k < result.asked.size() ? result.asked[k] : 0),
                 static_cast<long long>(k < result.trusted.size() ? result.trusted[k] : 0));
    stages_json.push_back({{"judge", stages[k].judge.text},
                           {"trust", stages[k].trust},
                           {"matchups", k < result.asked.size() ? result.asked[k] : 0},
                           {"trusted", k < result.trusted.size() ? result.trusted[k] : 0}});
  }
  std::fprintf(stderr,
               "arena judge: %lld of %lld matchups decided, %lld abstained on (%.1f%%); %zu "
               "battles written to %s\n",
               static_cast<long long>(std::ssize(result.games)), static_cast<long long>(total),
               static_cast<long long>(result.abstained), 100 * abstention, result.games.size(),
               out.c_str());
  if (auto path = args.get("stats")) {
    ordered_json j = {{"judge", name},
                      {"baseline", baseline},
                      {"verdict_format", verdict_format_name(options.verdict_format)},
                      {"annotators", cascade.annotators},
                      {"matchups", total},
                      {"abstained", result.abstained},
                      {"abstention_rate", abstention},
                      {"stages", stages_json}};
    j.update(stats.to_json());
    write_file_atomic(*path, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

int run_arena_judge(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"answers", "DIR", "the arena directory `arena answer` wrote (DIR/answers/*.jsonl)"},
      {"judge", "SPEC",
       "rm:DIR (reward model), verifier:NAME (gsm8k, math, ...) or llm:DIR; repeated (with "
       "--trust): a cascade of LLM judges"},
      {"trust", "L",
       "cascade: the confidence threshold of each --judge in turn (from arena calibrate); "
       "below it the matchup goes to the next judge, after the last it is abstained on"},
      {"annotators", "N", "cascade: sampled verdicts per order and judge (default 5)"},
      {"annotator-temperature", "T", "cascade: their sampling temperature (default 1.0)"},
      {"last-judge-decides", "", "cascade: the last judge's majority stands below its threshold"},
      {"baseline", "NAME", "the player every other player meets"},
      {"out", "FILE", "battles JSONL (default DIR/battles.jsonl)"},
      {"stats", "FILE", "the judge's counts, position and length bias as JSON"},
      {"judgments", "FILE", "every game, parsed or not, with the judge's output (JSONL)"},
      {"tie-band", "X", "rm: scores closer than X are a tie (default 0)"},
      {"rm-chat-template", "NAME", "rm: the template it was trained with (default auto; raw)"},
      {"judge-template", "FILE", "llm: the prompt, with {question}, {answer_a}, {answer_b}"},
      {"verdict-format", "FMT",
       "llm: mt-bench ([[A]]) or arena-hard ([[A>B]]); default: "
       "read off the template"},
      {"max-new-tokens", "N", "llm: the judge's tokens at most (default 512)"},
      {"dtype", "DTYPE", "rm, llm: float32 | bfloat16 | float16 (default: config.json)"},
      {"device", "DEV", "rm, llm: cpu | cuda[:N] (default cpu)"},
  };
  Args args(kCommand, specs, argv);
  if (args.help()) {
    std::fputs(format_help(kCommand,
                           "--answers DIR --judge rm:DIR|verifier:NAME|llm:DIR --baseline NAME "
                           "[options]",
                           "Judges every player against the baseline; writes battles.", specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const std::string dir = args.require("answers");
  const std::vector<std::string> judge_texts = args.get_all("judge");
  if (judge_texts.empty())
    throw UserError(std::string("flywheel ") + kCommand + ": --judge is required");
  const bool cascade = judge_texts.size() > 1 || args.get("trust");
  const JudgeSpec judge = parse_judge_spec(judge_texts[0]);
  const std::string baseline = args.require("baseline");
  JudgeOptions options;
  options.tie_band = args.get_double("tie-band", 0.0);
  if (!(options.tie_band >= 0))
    throw UserError(std::string("flywheel ") + kCommand + ": --tie-band must be >= 0");
  options.rm_chat_template = args.get("rm-chat-template").value_or(kAutoChatTemplate);
  options.reply.max_new_tokens = args.get_int("max-new-tokens", 512, 1);
  if (auto d = args.get("dtype")) options.load.dtype = parse_dtype(*d, "--dtype");
  options.load.device = parse_device(args.get("device").value_or("cpu"), "--device");
  if (judge.kind == JudgeKind::kLlm) llm_prompt_options(args, &options);

  std::map<std::string, std::map<std::string, ArenaAnswer>> answers;
  for (const auto& player : cached_players(dir))
    answers[player] = read_answers(answers_path(dir, player));
  if (!answers.contains(baseline))
    throw UserError(std::string("flywheel ") + kCommand + ": --baseline " + baseline +
                    " has no answers in " + dir + "/answers");
  if (answers.size() < 2)
    throw UserError(std::string("flywheel ") + kCommand + ": " + dir +
                    "/answers holds the baseline only; there is nobody to judge");
  const std::vector<Matchup> matchups = matchups_of(answers, baseline, dir);
  if (cascade) return run_cascade(args, dir, judge_texts, baseline, matchups, options);

  const std::vector<JudgedGame> games = judge_matchups(judge, matchups, options);
  const bool swapped = judge.kind == JudgeKind::kLlm;
  JudgeStats stats;
  std::map<std::string, std::array<int64_t, 3>> record;  // player: wins, ties, losses
  std::string battles, judgments;
  for (size_t i = 0; i < games.size(); ++i) {
    const JudgedGame& g = games[i];
    stats.add_game(g);
    if (swapped && g.game == 2) stats.add_meeting(games[i - 1], g);
    judgments += json_line(judgment_json(g, judge.text));
    if (!g.verdict.verdict) continue;
    battles += json_line(battle_json(g, judge.text));
    const Outcome o = g.verdict.verdict->outcome;
    const bool player_first = g.a->player != baseline;
    const std::string& player = player_first ? g.a->player : g.b->player;
    const bool tie = o == Outcome::kTie || o == Outcome::kTieBothBad;
    const bool first_won = o == Outcome::kA;
    ++record[player][tie ? 1 : first_won == player_first ? 0 : 2];
  }
  const std::string out = args.get("out").value_or(dir + "/battles.jsonl");
  write_file_atomic(out, battles);
  if (auto path = args.get("judgments")) write_file_atomic(*path, judgments);
  print_stats(judge, stats, swapped);
  for (const auto& [player, r] : record)
    std::fprintf(stderr, "arena judge: %s vs %s: %lld wins, %lld ties, %lld losses\n",
                 player.c_str(), baseline.c_str(), static_cast<long long>(r[0]),
                 static_cast<long long>(r[1]), static_cast<long long>(r[2]));
  std::fprintf(stderr, "arena judge: %lld battles written to %s\n",
               static_cast<long long>(stats.parsed), out.c_str());
  if (auto path = args.get("stats")) {
    ordered_json j = {{"judge", judge.text}, {"baseline", baseline}};
    if (judge.kind == JudgeKind::kLlm)
      j["verdict_format"] = verdict_format_name(options.verdict_format);
    j.update(stats.to_json());
    write_file_atomic(*path, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace flywheel::cli
