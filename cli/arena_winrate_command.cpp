// `flywheel arena winrate --battles FILE.jsonl --baseline NAME [--length-controlled]`: each
// player's win rate against the baseline, and with --length-controlled AlpacaEval's
// length-controlled win rate (trainer/eval/length_controlled.h explains the GLM).
//
// Battles are the rows trainer/eval/battles.h describes (Chatbot Arena's format): "model_a",
// "model_b", "winner" (model_a, model_b, tie or "tie (bothbad)"; a tie counts ½) and
// "question_id" (a string or a number; a battle without one is a prompt of its own). Games not
// involving the baseline are skipped. The length-controlled rate also needs both answers'
// lengths, under the names battles.h reads them: "style": {"len_a", "len_b", ...} (only the
// lengths are read here), or Arena's "conv_metadata": {"sum_assistant_a_tokens",
// "sum_assistant_b_tokens", ...}.
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/eval/length_controlled.h"

namespace flywheel::cli {
namespace {

using nlohmann::json;

const std::vector<FlagSpec>& winrate_flags() {
  static const std::vector<FlagSpec> kFlags = {
      {"battles", "FILE", "battles JSONL in Chatbot Arena's format (may be repeated)"},
      {"baseline", "NAME", "the model every player is compared with"},
      {"length-controlled", "", "also fit AlpacaEval's length-controlled win rate"},
      {"difficulty", "FILE",
       "JSONL {question_id, instruction_difficulty} to use instead of fitting it "
       "(e.g. AlpacaEval's table)"},
      {"gamed", "NAME",
       "a player that is the baseline prompted to be verbose or concise: regularizes every "
       "fit toward it (may be repeated)"},
      {"gamed-lambda", "X", "total weight of the gamed players' games (default 0.2)"},
      {"json", "", "print the results as one JSON object"},
  };
  return kFlags;
}

InstructionDifficulty read_difficulty(const std::string& path) {
  InstructionDifficulty out;
  JsonlReader reader(path);
  for (JsonlRecord rec; reader.next(&rec);) {
    const std::string where = path + ":" + std::to_string(rec.line) + ": ";
    const json& row = rec.value;
    if (!row.is_object() || !row.contains("question_id"))
      throw UserError(where +
                      "expected an object with \"question_id\" and \"instruction_difficulty\"");
    const std::string key = instruction_key(row["question_id"], where);
    if (!row.contains("instruction_difficulty") || !row["instruction_difficulty"].is_number())
      throw UserError(where + "\"instruction_difficulty\" must be a number");
    if (!out.emplace(key, row["instruction_difficulty"].get<double>()).second)
      throw UserError(where + "question_id " + key + " appears twice");
  }
  return out;
}

json to_json(const LengthControlledWinRate& r, bool length_controlled) {
  json j = {{"player", r.player},
            {"games", r.raw.games},
            {"wins", r.raw.wins},
            {"losses", r.raw.losses},
            {"ties", r.raw.ties},
            {"win_rate", r.raw.win_rate},
            {"standard_error", r.raw.standard_error}};  // NaN is written as null
  if (length_controlled) {
    j["lc_win_rate"] = r.lc_win_rate;
    j["lc_standard_error"] = r.lc_standard_error;
    j["bias"] = r.bias;
    j["length_weight"] = r.length_weight;
    j["difficulty_weight"] = r.difficulty_weight;
    j["C"] = r.C;
    j["converged"] = r.converged;
  }
  return j;
}

}  // namespace

int run_arena_winrate(const std::vector<std::string>& argv) {
  const Args args("arena winrate", winrate_flags(), argv);
  if (args.help()) {
    std::fputs(format_help("arena winrate", "--battles FILE.jsonl --baseline NAME [options]",
                           "Win rates against a baseline; --length-controlled adds AlpacaEval's "
                           "length-controlled win rate.",
                           winrate_flags())
                   .c_str(),
               stdout);
    return 0;
  }
  const std::vector<std::string> paths = args.get_all("battles");
  if (paths.empty()) throw UserError("flywheel arena winrate: --battles is required");
  const std::string baseline = args.require("baseline");
  const bool length_controlled = args.flag("length-controlled");
  LengthControlOptions options;
  options.gamed_players = args.get_all("gamed");
  options.gamed_lambda = args.get_double("gamed-lambda", options.gamed_lambda);
  if (options.gamed_lambda < 0)
    throw UserError("flywheel arena winrate: --gamed-lambda must be >= 0");
  if (auto path = args.get("difficulty")) options.difficulty = read_difficulty(*path);
  if (!length_controlled && (args.get("difficulty") || !options.gamed_players.empty()))
    throw UserError("flywheel arena winrate: --difficulty and --gamed need --length-controlled");

  const BaselineGamesRead read = read_baseline_games(paths, baseline, length_controlled);
  if (read.games.empty())
    throw UserError("flywheel arena winrate: no battle involves the baseline " + baseline);

  std::vector<LengthControlledWinRate> rates;
  if (length_controlled) {
    rates = length_controlled_win_rates(read.games, options);
  } else {
    std::map<std::string, std::vector<BaselineGame>> by_player;
    for (const auto& g : read.games)
      by_player[g.player].push_back(g);
    for (const auto& [player, games] : by_player) {
      LengthControlledWinRate r;
      r.player = player;
      r.raw = raw_win_rate(games);
      rates.push_back(r);
    }
  }

  if (args.flag("json")) {
    json out = {{"baseline", baseline},
                {"battles", read.battles},
                {"games_against_baseline", read.games.size()},
                {"length_controlled", length_controlled},
                {"players", json::array()}};
    for (const auto& r : rates)
      out["players"].push_back(to_json(r, length_controlled));
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf("baseline %s: %zu of %lld battles are games against it\n", baseline.c_str(),
              read.games.size(), static_cast<long long>(read.battles));
  std::printf("%-28s %6s %6s %6s %6s %16s", "player", "games", "wins", "losses", "ties",
              "win rate (se)");
  if (length_controlled) std::printf(" %16s %10s", "LC win rate (se)", "len weight");
  std::printf("\n");
  for (const auto& r : rates) {
    std::printf("%-28s %6lld %6lld %6lld %6lld %8.2f (%5.2f)", r.player.c_str(),
                static_cast<long long>(r.raw.games), static_cast<long long>(r.raw.wins),
                static_cast<long long>(r.raw.losses), static_cast<long long>(r.raw.ties),
                r.raw.win_rate, r.raw.standard_error);
    if (length_controlled)
      std::printf(" %8.2f (%5.2f) %10.3f%s", r.lc_win_rate, r.lc_standard_error, r.length_weight,
                  r.converged ? "" : "  (fit did not converge)");
    std::printf("\n");
  }
  return 0;
}

}  // namespace flywheel::cli
