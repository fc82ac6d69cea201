#include "trainer/eval/mining.h"

#include <map>

#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"

namespace flywheel {
namespace {

using nlohmann::json;

const std::string& name_field(const json& v, const char* key, const std::string& where) {
  const auto it = v.find(key);
  if (it == v.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    throw UserError(where + ": \"" + key + "\": expected a non-empty string (a model name)");
  return it->get_ref<const std::string&>();
}

Outcome outcome_of(const json& v, const std::string& where) {
  const auto it = v.find("winner");
  if (it != v.end() && it->is_string()) {
    const std::string& w = it->get_ref<const std::string&>();
    if (w == "model_a") return Outcome::kA;
    if (w == "model_b") return Outcome::kB;
    if (w == "tie") return Outcome::kTie;
    if (w == "tie (bothbad)") return Outcome::kTieBothBad;
  }
  throw UserError(where +
                  ": \"winner\": expected \"model_a\", \"model_b\", \"tie\" or \"tie (bothbad)\"");
}

// An opponent's record against the policy on one question.
struct Tally {
  std::string opponent;
  int64_t margin = 0;
  int64_t games = 0;
};

}  // namespace

std::vector<BattleRecord> read_battle_records(const std::string& path) {
  std::vector<BattleRecord> out;
  JsonlReader reader(path);
  for (JsonlRecord rec; reader.next(&rec);) {
    BattleRecord b;
    b.where = path + ":" + std::to_string(rec.line);
    const json& v = rec.value;
    if (!v.is_object()) throw UserError(b.where + ": expected a JSON object (one battle)");
    b.model_a = name_field(v, "model_a", b.where);
    b.model_b = name_field(v, "model_b", b.where);
    b.outcome = outcome_of(v, b.where);
    const auto qid = v.find("question_id");
    if (qid != v.end() && qid->is_string()) {
      b.question_id = qid->get<std::string>();
    } else if (qid != v.end() && qid->is_number()) {
      b.question_id = qid->dump();
    } else {
      // Mining needs the question to find the answers.
      throw UserError(b.where + ": \"question_id\": expected a string or a number");
    }
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<MinedPair> mine_pairs(const std::vector<BattleRecord>& battles,
                                  const std::string& policy, const AnswerLookup& answer,
                                  MiningStats* stats) {
  // Questions in first-seen order, each with its opponents in first-seen order.
  std::vector<std::string> questions;
  std::map<std::string, std::vector<Tally>> tallies;
  for (const auto& b : battles) {
    ++stats->battles;
    const bool policy_a = b.model_a == policy, policy_b = b.model_b == policy;
    if (policy_a == policy_b) continue;  // not the policy's (or a self-battle)
    ++stats->policy_battles;
    auto [it, added] = tallies.try_emplace(b.question_id);
    if (added) questions.push_back(b.question_id);
    const std::string& opponent = policy_a ? b.model_b : b.model_a;
    Tally* t = nullptr;
    for (auto& x : it->second) {
      if (x.opponent == opponent) t = &x;
    }
    if (t == nullptr) t = &it->second.emplace_back(Tally{opponent, 0, 0});
    ++t->games;
    const Outcome opponent_wins = policy_a ? Outcome::kB : Outcome::kA;
    const Outcome policy_wins = policy_a ? Outcome::kA : Outcome::kB;
    if (b.outcome == opponent_wins) ++t->margin;
    if (b.outcome == policy_wins) --t->margin;
  }
  std::vector<MinedPair> pairs;
  stats->questions += static_cast<int64_t>(questions.size());
  for (const auto& q : questions) {
    const Tally* best = nullptr;
    for (const auto& t : tallies[q]) {
      if (t.margin > 0 && (best == nullptr || t.margin > best->margin)) best = &t;
    }
    if (best == nullptr) continue;
    ++stats->lost_questions;
    MinedPair pair{q, &answer(best->opponent, q), &answer(policy, q), best->margin, best->games};
    if (pair.chosen->answer == pair.rejected->answer) {
      ++stats->identical;
      continue;
    }
    pairs.push_back(pair);
    ++stats->pairs;
  }
  return pairs;
}

nlohmann::ordered_json pair_json(const MinedPair& p) {
  using nlohmann::ordered_json;
  auto turn = [](const std::string& text) {
    return ordered_json::array({{{"role", "assistant"}, {"content", text}}});
  };
  return {{"prompt", p.rejected->messages},
          {"chosen", turn(p.chosen->answer)},
          {"rejected", turn(p.rejected->answer)},
          {"question_id", p.question_id},
          {"chosen_model", p.chosen->player},
          {"rejected_model", p.rejected->player},
          {"margin", p.margin},
          {"games", p.games}};
}

}  // namespace flywheel
