#include "trainer/eval/arena_hard.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "trainer/core/jsonl.h"

namespace flywheel {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& where, const std::string& message) {
  throw UserError(where + ": " + message);
}

// A verdict read as "which letter won, and how strongly".
struct Verdict {
  char winner = '=';  // 'A', 'B' or '=' (tie)
  bool strong = false;
};

std::optional<Verdict> parse_verdict(const std::string& s) {
  if (s == "A>>B" || s == "B<<A") return Verdict{'A', true};
  if (s == "A>B" || s == "B<A") return Verdict{'A', false};
  if (s == "A=B" || s == "B=A") return Verdict{'=', false};
  if (s == "B>A" || s == "A<B") return Verdict{'B', false};
  if (s == "B>>A" || s == "A<<B") return Verdict{'B', true};
  return std::nullopt;
}

std::string require_string(const json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) fail(where, std::string("missing key \"") + key + "\"");
  if (!it->is_string() || it->get_ref<const std::string&>().empty())
    fail(where, std::string("\"") + key + "\": expected a non-empty string, got " + it->dump());
  return it->get<std::string>();
}

}  // namespace

void read_arena_hard(const std::string& path, const ArenaHardOptions& options, BattleLog* log,
                     ArenaHardCounts* counts) {
  if (options.baseline.empty()) throw UserError("Arena-Hard judgments need a baseline model");
  if (options.strong_weight < 1)
    throw UserError("Arena-Hard: the weight of strong verdicts must be >= 1");
  JsonlReader reader(path);
  JsonlRecord record;
  while (reader.next(&record)) {
    const json& j = record.value;
    const std::string where = path + ":" + std::to_string(record.line);
    if (!j.is_object()) fail(where, "expected a JSON object (one judgment), got " + j.dump());
    const std::string model = require_string(j, "model", where);
    if (model == options.baseline)
      fail(where, "\"model\" is the baseline \"" + model + "\" itself");
    const auto qid = j.find("question_id");
    if (qid == j.end()) fail(where, "missing key \"question_id\"");
    if (!qid->is_string() && !qid->is_number())
      fail(where, "\"question_id\": expected a string or a number, got " + qid->dump());
    const auto games = j.find("games");
    if (games == j.end()) fail(where, "missing key \"games\"");
    if (!games->is_array() || games->empty() || games->size() > 2)
      fail(where, "\"games\": expected a list of one or two games, got " + games->dump());
    const int32_t prompt = log->prompt(qid->is_string() ? qid->get<std::string>() : qid->dump());
    ++counts->judgments;
    for (size_t g = 0; g < games->size(); ++g) {
      const json& game = (*games)[g];
      const std::string game_where = where + ": games[" + std::to_string(g) + "]";
      if (!game.is_null() && !game.is_object())
        fail(game_where, "expected an object with a \"score\", got " + game.dump());
      const auto score = game.find("score");  // end() for null too
      if (score == game.end() || score->is_null()) {
        ++counts->null_games;
        continue;
      }
      const std::optional<Verdict> v =
          score->is_string() ? parse_verdict(score->get<std::string>()) : std::nullopt;
      if (!v)
        fail(game_where,
             "\"score\": expected A>>B, A>B, A=B, B>A, B>>A or null, got " + score->dump());
      // Game 1 shows the model as B, game 2 as A.
      const char model_letter = g == 0 ? 'B' : 'A';
      Battle battle;
      battle.a = log->player(options.baseline);
      battle.b = log->player(model);
      battle.prompt = prompt;
      battle.winner = v->winner == '='            ? Winner::kTie
                      : v->winner == model_letter ? Winner::kB
                                                  : Winner::kA;
      battle.weight = v->strong ? options.strong_weight : 1;
      log->add(battle, std::nullopt, where + " (Arena-Hard judgments carry no style features)");
      ++counts->games;
    }
  }
}

}  // namespace flywheel
