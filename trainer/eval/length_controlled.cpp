#include "trainer/eval/length_controlled.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"

namespace flywheel {
namespace {

using nlohmann::json;

double logistic(double z) {
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}

// Sample standard error (ddof 1) of `values`; NaN with fewer than two, as pandas' sem().
double standard_error(const std::vector<double>& values) {
  const size_t n = values.size();
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  double mean = 0;
  for (double v : values)
    mean += v / static_cast<double>(n);
  double squares = 0;
  for (double v : values)
    squares += (v - mean) * (v - mean);
  return std::sqrt(squares / static_cast<double>(n - 1)) / std::sqrt(static_cast<double>(n));
}

std::vector<BaselineGame> games_of(const std::vector<BaselineGame>& games,
                                   const std::string& player, bool keep) {
  std::vector<BaselineGame> out;
  for (const auto& g : games)
    if ((g.player == player) == keep) out.push_back(g);
  return out;
}

// The per-player GLM's features, in glm_winrate.py's column order.
enum Feature { kLength = 0, kDifficulty = 1, kBias = 2, kNumFeatures = 3 };

double difficulty_of(const InstructionDifficulty& difficulty, const std::string& instruction,
                     double fallback) {
  auto it = difficulty.find(instruction);
  return it == difficulty.end() ? fallback : it->second;
}

double mean_difficulty(const InstructionDifficulty& difficulty) {
  double sum = 0;
  for (const auto& [_, v] : difficulty)
    sum += v;
  return difficulty.empty() ? 0.0 : sum / static_cast<double>(difficulty.size());
}

// Rows of one player's games: tanh of the standardized length difference, γ_x and, for the
// player's own games (not the gamed anchors), the bias.
void append_rows(const std::vector<BaselineGame>& games, const InstructionDifficulty& difficulty,
                 double missing_difficulty, bool with_bias, double weight,
                 std::vector<LogisticRow>* rows) {
  const std::vector<double> delta = standardized_length_deltas(games);
  for (size_t i = 0; i < games.size(); ++i) {
    LogisticRow row;
    row.x = {{kLength, std::tanh(delta[i])},
             {kDifficulty, difficulty_of(difficulty, games[i].instruction, missing_difficulty)}};
    if (with_bias) row.x.emplace_back(kBias, 1.0);
    row.target = games[i].preference;
    row.weight = weight;
    rows->push_back(std::move(row));
  }
}

LengthControlledWinRate rate_player(const std::string& player,
                                    const std::vector<BaselineGame>& games,
                                    const std::vector<BaselineGame>& anchors, double anchor_weight,
                                    const LengthControlOptions& options) {
  const std::vector<BaselineGame> own = games_of(games, player, true);
  if (options.fit.Cs.size() > 1 &&
      own.size() + anchors.size() < static_cast<size_t>(options.fit.folds))
    throw UserError(player + " has " + std::to_string(own.size()) +
                    " games against the baseline; its length-controlled fit chooses C by " +
                    std::to_string(options.fit.folds) +
                    "-fold cross-validation and needs at least " +
                    std::to_string(options.fit.folds));
  LengthControlledWinRate out;
  out.player = player;
  out.raw = raw_win_rate(own);

  const InstructionDifficulty difficulty =
      options.difficulty ? *options.difficulty
                         : fit_instruction_difficulty(games_of(games, player, false), options.fit);
  const double missing = mean_difficulty(difficulty);

  // glm_winrate.py puts the gamed anchors first; the order decides the cross-validation folds.
  std::vector<LogisticRow> rows;
  append_rows(anchors, difficulty, missing, /*with_bias=*/false, anchor_weight, &rows);
  append_rows(own, difficulty, missing, /*with_bias=*/true, 1.0, &rows);
  const L1LogisticCvFit fit = fit_l1_logistic_cv(rows, kNumFeatures, options.fit);
  out.length_weight = fit.coef[kLength];
  out.difficulty_weight = fit.coef[kDifficulty];
  out.bias = fit.coef[kBias];
  out.C = fit.C;
  out.converged = fit.converged;

  // The prediction at equal lengths, once per instruction the player played.
  std::set<std::string> instructions;
  for (const auto& g : own)
    instructions.insert(g.instruction);
  std::vector<double> predicted;
  for (const auto& x : instructions)
    predicted.push_back(
        logistic(out.bias + out.difficulty_weight * difficulty_of(difficulty, x, missing)));
  double mean = 0;
  for (double p : predicted)
    mean += p / static_cast<double>(predicted.size());
  out.lc_win_rate = 100 * mean;
  out.lc_standard_error = 100 * standard_error(predicted);
  return out;
}

std::string string_field(const json& row, const char* key, const std::string& where) {
  if (!row.contains(key) || !row[key].is_string())
    throw UserError(where + "expected a string \"" + key + "\"");
  return row[key].get<std::string>();
}

double number_field(const json& object, const char* key, const std::string& where,
                    const std::string& path_in_row) {
  if (!object.contains(key) || !object[key].is_number() || object[key].get<double>() < 0)
    throw UserError(where + "\"" + path_in_row + "\" must be a number >= 0");
  return object[key].get<double>();
}

// The answers' lengths of a row: style's len_a / len_b, else conv_metadata's token sums.
std::pair<double, double> answer_lengths(const json& row, const std::string& where) {
  if (row.contains("style") && row["style"].is_object())
    return {number_field(row["style"], "len_a", where, "style.len_a"),
            number_field(row["style"], "len_b", where, "style.len_b")};
  if (row.contains("conv_metadata") && row["conv_metadata"].is_object()) {
    const json& meta = row["conv_metadata"];
    return {
        number_field(meta, "sum_assistant_a_tokens", where, "conv_metadata.sum_assistant_a_tokens"),
        number_field(meta, "sum_assistant_b_tokens", where,
                     "conv_metadata.sum_assistant_b_tokens")};
  }
  throw UserError(where +
                  "--length-controlled needs the answers' lengths: \"style\" with \"len_a\" and "
                  "\"len_b\", or \"conv_metadata\" with \"sum_assistant_a_tokens\" and "
                  "\"sum_assistant_b_tokens\"");
}

}  // namespace

RawWinRate raw_win_rate(const std::vector<BaselineGame>& games) {
  RawWinRate out;
  std::vector<double> preferences;
  for (const auto& g : games) {
    ++out.games;
    if (g.preference > 0.5) ++out.wins;
    if (g.preference < 0.5) ++out.losses;
    if (g.preference == 0.5) ++out.ties;
    preferences.push_back(g.preference);
  }
  double sum = 0;
  for (double p : preferences)
    sum += p;
  out.win_rate = games.empty() ? 0.0 : 100 * sum / static_cast<double>(games.size());
  out.standard_error = 100 * standard_error(preferences);
  return out;
}

std::vector<double> standardized_length_deltas(const std::vector<BaselineGame>& games) {
  std::map<std::string, std::vector<double>> by_player;
  for (const auto& g : games)
    by_player[g.player].push_back(g.baseline_length - g.player_length);
  std::map<std::string, double> sd;
  for (const auto& [player, deltas] : by_player) {
    const double se = standard_error(deltas);
    sd[player] = se * std::sqrt(static_cast<double>(deltas.size()));
  }
  std::vector<double> out;
  for (const auto& g : games) {
    const double s = sd[g.player];
    out.push_back(std::isfinite(s) && s > 0 ? (g.baseline_length - g.player_length) / s : 0.0);
  }
  return out;
}

InstructionDifficulty fit_instruction_difficulty(const std::vector<BaselineGame>& games,
                                                 const L1LogisticCvOptions& options) {
  if (games.empty() || (options.Cs.size() > 1 && games.size() < static_cast<size_t>(options.folds)))
    return {};
  // Columns: per player a bias and a length weight, then one per instruction but the first.
  std::map<std::string, int> player_index, instruction_index;
  for (const auto& g : games) {
    player_index.emplace(g.player, 0);
    instruction_index.emplace(g.instruction, 0);
  }
  int column = 0;
  for (auto& [_, index] : player_index) {
    index = column;
    column += 2;
  }
  bool reference = true;  // the instruction whose id sorts first has no column: γ = 0
  for (auto& [_, index] : instruction_index) {
    index = reference ? -1 : column++;
    reference = false;
  }

  const std::vector<double> delta = standardized_length_deltas(games);
  std::vector<LogisticRow> rows;
  for (size_t i = 0; i < games.size(); ++i) {
    const int p = player_index.at(games[i].player);
    const int x = instruction_index.at(games[i].instruction);
    LogisticRow row;
    row.x = {{p, 1.0}, {p + 1, std::tanh(delta[i])}};
    if (x >= 0) row.x.emplace_back(x, 1.0);
    row.target = games[i].preference;
    rows.push_back(std::move(row));
  }
  const L1LogisticCvFit fit = fit_l1_logistic_cv(rows, column, options);
  InstructionDifficulty out;
  for (const auto& [instruction, x] : instruction_index)
    out[instruction] = x >= 0 ? fit.coef[static_cast<size_t>(x)] : 0.0;
  return out;
}

std::vector<LengthControlledWinRate> length_controlled_win_rates(
    const std::vector<BaselineGame>& games, const LengthControlOptions& options) {
  std::set<std::string> players;
  for (const auto& g : games) {
    if (!(g.preference >= 0 && g.preference <= 1))
      throw UserError("a game of " + g.player + " on \"" + g.instruction + "\" has preference " +
                      std::to_string(g.preference) + ", expected a value in [0, 1]");
    if (options.difficulty && !options.difficulty->count(g.instruction))
      throw UserError("the instruction difficulty table has no instruction \"" + g.instruction +
                      "\" (played by " + g.player + ")");
    players.insert(g.player);
  }
  std::vector<BaselineGame> anchors;
  for (const auto& gamed : options.gamed_players) {
    if (!players.count(gamed))
      throw UserError("gamed player " + gamed + " has no games against the baseline");
    const auto games_of_gamed = games_of(games, gamed, true);
    anchors.insert(anchors.end(), games_of_gamed.begin(), games_of_gamed.end());
  }
  const double anchor_weight =
      options.gamed_players.empty()
          ? 0.0
          : options.gamed_lambda / static_cast<double>(options.gamed_players.size());
  std::vector<LengthControlledWinRate> out;
  for (const auto& player : players) {
    if (!options.only.empty() &&
        std::find(options.only.begin(), options.only.end(), player) == options.only.end())
      continue;
    out.push_back(rate_player(player, games, anchors, anchor_weight, options));
  }
  return out;
}

// A question_id as a key: strings as they are, numbers as JSON writes them (as battles.h keys
// prompts).
std::string instruction_key(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  throw UserError(where + "\"question_id\" must be a string or a number");
}

BaselineGamesRead read_baseline_games(const std::vector<std::string>& paths,
                                      const std::string& baseline, bool need_lengths) {
  BaselineGamesRead out;
  for (const auto& path : paths) {
    JsonlReader reader(path);
    for (JsonlRecord rec; reader.next(&rec);) {
      const std::string where = path + ":" + std::to_string(rec.line) + ": ";
      const json& row = rec.value;
      if (!row.is_object()) throw UserError(where + "expected a JSON object");
      ++out.battles;
      const std::string a = string_field(row, "model_a", where);
      const std::string b = string_field(row, "model_b", where);
      const std::string winner = string_field(row, "winner", where);
      double preference_for_a;
      if (winner == "model_a") {
        preference_for_a = 1;
      } else if (winner == "model_b") {
        preference_for_a = 0;
      } else if (winner == "tie" || winner == "tie (bothbad)") {
        preference_for_a = 0.5;
      } else {
        throw UserError(where +
                        "\"winner\" must be model_a, model_b, tie or \"tie (bothbad)\", got \"" +
                        winner + "\"");
      }
      if (a == b) throw UserError(where + "\"model_a\" and \"model_b\" are both \"" + a + "\"");
      const std::string instruction = row.contains("question_id") && !row["question_id"].is_null()
                                          ? instruction_key(row["question_id"], where)
                                          : where;       // a prompt of its own
      if ((a == baseline) == (b == baseline)) continue;  // not a game against the baseline
      const auto [len_a, len_b] = need_lengths ? answer_lengths(row, where) : std::pair{0.0, 0.0};
      const bool baseline_is_a = a == baseline;
      BaselineGame g;
      g.player = baseline_is_a ? b : a;
      g.instruction = instruction;
      g.preference = baseline_is_a ? 1 - preference_for_a : preference_for_a;
      g.player_length = baseline_is_a ? len_b : len_a;
      g.baseline_length = baseline_is_a ? len_a : len_b;
      out.games.push_back(std::move(g));
    }
  }
  return out;
}

}  // namespace flywheel
