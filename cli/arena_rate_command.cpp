// `flywheel arena rate --battles FILE.jsonl [--arena-hard FILE.jsonl --baseline NAME] ...`:
// Bradley–Terry ratings (Chatbot Arena's), with bootstrap 95% intervals, ranks, online Elo,
// optional style control, and each model's predicted win rate against a baseline (Arena-Hard's
// score). The Markdown leaderboard goes to stdout, a summary and any warnings to stderr, and
// --json writes the same as JSON. The formats are described in trainer/eval/battles.h and
// trainer/eval/arena_hard.h.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/eval/arena_hard.h"
#include "trainer/eval/battles.h"
#include "trainer/eval/leaderboard.h"
#include "trainer/eval/rating_plot.h"

namespace flywheel::cli {
namespace {

constexpr const char* kCommand = "arena rate";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double parse_number(const std::string& text, const std::string& flag) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v))
    throw UserError(std::string("flywheel ") + kCommand + ": --" + flag +
                    " expects a number, got '" + text + "'");
  return v;
}

// --anchor NAME=RATING (the name may itself contain '=': the last one splits).
void parse_anchor(const std::string& text, RatingOptions* options) {
  const size_t eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0)
    throw UserError(std::string("flywheel ") + kCommand +
                    ": --anchor expects NAME=RATING, e.g. gpt-4-0314=1000, got '" + text + "'");
  options->anchor = text.substr(0, eq);
  options->anchor_rating = parse_number(text.substr(eq + 1), "anchor");
}

ResampleUnit parse_unit(const std::string& text) {
  if (text == "prompt") return ResampleUnit::kPrompt;
  if (text == "battle") return ResampleUnit::kBattle;
  throw UserError(std::string("flywheel ") + kCommand +
                  ": --bootstrap-unit expects prompt or battle, got '" + text + "'");
}

}  // namespace

int run_arena_rate(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"battles", "FILE", "battle JSONL (Chatbot Arena's format; .gz too); may be repeated"},
      {"arena-hard", "FILE",
       "Arena-Hard-Auto v0.1 judgment JSONL; may be repeated; needs --baseline"},
      {"baseline", "NAME", "add each model's predicted win rate (%) against NAME"},
      {"arena-hard-weight", "N", "times a strong verdict (A>>B) counts (default 3)"},
      {"anchor", "NAME=RATING", "shift the ratings so NAME has RATING (default: mean 1000)"},
      {"style-control", "", "control for length and markdown (Chatbot Arena's style control)"},
      {"style-l2", "X", "style control's L2 penalty (default 0.5, as Chatbot Arena)"},
      {"virtual-tie", "X",
       "ties added per pair of players when the MLE diverges (default 0.01 battles)"},
      {"bootstrap", "N", "bootstrap rounds for the 95% intervals (default 100; 0: none)"},
      {"bootstrap-unit", "UNIT",
       "prompt (default: a question_id's battles move together) or battle"},
      {"seed", "S", "bootstrap seed (default 0)"},
      {"threads", "N", "bootstrap threads (default: all cores)"},
      {"json", "FILE", "also write the leaderboard as JSON"},
      {"plot", "FILE.png", "also draw the ratings and their intervals (needs gnuplot)"},
  };
  Args args(kCommand, specs, argv);
  if (args.help()) {
    std::fputs(format_help(kCommand,
                           "--battles FILE.jsonl [--arena-hard FILE.jsonl --baseline NAME] "
                           "[options]",
                           "Bradley-Terry ratings with bootstrap intervals, online Elo and "
                           "style control, as a Markdown leaderboard.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const auto battle_files = args.get_all("battles");
  const auto arena_hard_files = args.get_all("arena-hard");
  if (battle_files.empty() && arena_hard_files.empty())
    throw UserError(std::string("flywheel ") + kCommand +
                    ": give --battles FILE and/or --arena-hard FILE (see --help)");
  const std::optional<std::string> baseline = args.get("baseline");
  if (!arena_hard_files.empty() && !baseline)
    throw UserError(std::string("flywheel ") + kCommand +
                    ": --arena-hard needs --baseline NAME (the model the judgments compare to)");
  RatingOptions options;
  if (auto anchor = args.get("anchor")) parse_anchor(*anchor, &options);
  options.style_control = args.flag("style-control");
  if (auto l2 = args.get("style-l2")) options.style_l2 = parse_number(*l2, "style-l2");
  if (auto tie = args.get("virtual-tie")) options.virtual_tie = parse_number(*tie, "virtual-tie");
  options.validate();
  BootstrapOptions boot_options;
  boot_options.rounds = static_cast<int>(args.get_int("bootstrap", 100, 0));
  boot_options.unit = parse_unit(args.get("bootstrap-unit").value_or("prompt"));
  boot_options.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));
  boot_options.threads = static_cast<int>(args.get_int("threads", 0, 0));

  const auto start = std::chrono::steady_clock::now();
  BattleLog log;
  for (const auto& path : battle_files)
    read_battles(path, &log);
  ArenaHardCounts arena_hard;
  ArenaHardOptions arena_hard_options;
  arena_hard_options.baseline = baseline.value_or("");
  arena_hard_options.strong_weight = static_cast<int>(args.get_int("arena-hard-weight", 3, 1));
  for (const auto& path : arena_hard_files)
    read_arena_hard(path, arena_hard_options, &log, &arena_hard);
  if (log.battles().empty()) throw UserError(std::string("flywheel ") + kCommand + ": no battles");
  const double read_s = seconds_since(start);

  RatedLog rated = rate_log(log, options, boot_options, baseline);
  Leaderboard& board = rated.board;
  const int32_t units = rated.units;
  const double fit_s = rated.fit_seconds, boot_s = rated.bootstrap_seconds;
  if (arena_hard.null_games > 0)
    board.warnings.push_back("Arena-Hard: " + std::to_string(arena_hard.null_games) + " of " +
                             std::to_string(arena_hard.games + arena_hard.null_games) +
                             " games had no verdict (null score) and were skipped");

  std::fputs(leaderboard_markdown(board).c_str(), stdout);
  std::fprintf(stderr,
               "arena rate: %zu battles, %zu players, %d %s units; read %.2f s, fit %.2f s, "
               "%d bootstrap rounds %.2f s\n",
               log.battles().size(), log.players().size(), units,
               boot_options.unit == ResampleUnit::kPrompt ? "prompt" : "battle", read_s, fit_s,
               boot_options.rounds, boot_s);
  for (const auto& w : board.warnings)
    std::fprintf(stderr, "warning: %s\n", w.c_str());

  if (auto path = args.get("json")) {
    nlohmann::ordered_json out = leaderboard_json(board);
    out["bootstrap"] = {{"rounds", boot_options.rounds},
                        {"unit", boot_options.unit == ResampleUnit::kPrompt ? "prompt" : "battle"},
                        {"seed", boot_options.seed}};
    if (options.anchor)
      out["anchor"] = {{"name", *options.anchor}, {"rating", options.anchor_rating}};
    if (!arena_hard_files.empty())
      out["arena_hard"] = {{"judgments", arena_hard.judgments},
                           {"games", arena_hard.games},
                           {"null_games", arena_hard.null_games}};
    std::ofstream file(*path);
    file << out.dump(2) << "\n";
    if (!file) throw UserError("cannot write " + *path);
  }
  if (auto path = args.get("plot")) {
    plot_leaderboard(board, *path,
                     "Bradley-Terry ratings, " + std::to_string(log.battles().size()) + " battles" +
                         (boot_options.rounds > 0 ? ", 95% bootstrap intervals" : ""));
  }
  return 0;
}

}  // namespace flywheel::cli
