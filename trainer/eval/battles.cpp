#include "trainer/eval/battles.h"

#include <algorithm>
#include <array>
#include <exception>
#include <nlohmann/json.hpp>
#include <thread>

#include "trainer/core/jsonl.h"

namespace flywheel {
namespace {

using nlohmann::json;

// "PATH:LINE", formatted only when a message needs it (a million battles are read in seconds).
struct Where {
  const std::string& path;
  int64_t line;
  std::string str() const { return path + ":" + std::to_string(line); }
};

[[noreturn]] void fail(const Where& where, const std::string& message) {
  throw UserError(where.str() + ": " + message);
}

const std::string& require_name(const json& j, const char* key, const Where& where) {
  const auto it = j.find(key);
  if (it == j.end()) fail(where, std::string("missing key \"") + key + "\" (a model name)");
  if (!it->is_string() || it->get_ref<const std::string&>().empty())
    fail(where, std::string("\"") + key + "\": expected a non-empty string (a model name), got " +
                    it->dump());
  return it->get_ref<const std::string&>();
}

Winner parse_winner(const json& j, const Where& where) {
  const auto it = j.find("winner");
  if (it == j.end()) fail(where, "missing key \"winner\"");
  if (it->is_string()) {
    const std::string& w = it->get_ref<const std::string&>();
    if (w == "model_a") return Winner::kA;
    if (w == "model_b") return Winner::kB;
    if (w == "tie" || w == "tie (bothbad)") return Winner::kTie;
  }
  fail(where, "\"winner\": expected \"model_a\", \"model_b\", \"tie\" or \"tie (bothbad)\", got " +
                  it->dump());
}

// A style count: a number >= 0, or (Chatbot Arena's dicts) an object of such numbers, summed.
// `group`.`key` names the value in messages (style.len_a, conv_metadata.header_count_a).
double parse_count(const json& v, const char* group, const char* key, const Where& where,
                   bool allow_object) {
  if (v.is_number() && v.get<double>() >= 0) return v.get<double>();
  if (allow_object && v.is_object()) {
    double sum = 0;
    for (const auto& [k, x] : v.items()) {
      if (!x.is_number() || x.get<double>() < 0)
        fail(where, std::string("\"") + group + "." + key + "\".\"" + k +
                        "\": expected a count >= 0, got " + x.dump());
      sum += x.get<double>();
    }
    return sum;
  }
  fail(where, std::string("\"") + group + "." + key + "\": expected a count >= 0" +
                  std::string(allow_object ? " or an object of counts" : "") + ", got " + v.dump());
}

// The eight keys of each form, in the order length, headers, lists, bold; side a then side b.
constexpr std::array<const char*, 8> kFlatKeys = {"len_a", "header_a", "list_a", "bold_a",
                                                  "len_b", "header_b", "list_b", "bold_b"};
constexpr std::array<const char*, 8> kArenaKeys = {
    "sum_assistant_a_tokens", "header_count_a", "list_count_a", "bold_count_a",
    "sum_assistant_b_tokens", "header_count_b", "list_count_b", "bold_count_b"};

BattleStyle to_style(const std::array<double, 8>& v) {
  return {{v[0], v[1], v[2], v[3]}, {v[4], v[5], v[6], v[7]}};
}

BattleStyle parse_flat_style(const json& s, const Where& where) {
  if (!s.is_object()) fail(where, "\"style\": expected an object, got " + s.dump());
  for (const auto& [k, unused] : s.items()) {
    bool known = false;
    for (const char* key : kFlatKeys)
      known = known || k == key;
    if (!known)
      fail(where, "\"style\": unknown key \"" + k +
                      "\" (expected len_a, len_b, header_a, header_b, list_a, list_b, bold_a, "
                      "bold_b)");
  }
  std::array<double, 8> v{};
  for (size_t i = 0; i < kFlatKeys.size(); ++i) {
    const auto it = s.find(kFlatKeys[i]);
    if (it == s.end()) fail(where, std::string("\"style\": missing key \"") + kFlatKeys[i] + "\"");
    v[i] = parse_count(*it, "style", kFlatKeys[i], where, false);
  }
  return to_style(v);
}

// Chatbot Arena's conv_metadata; nullopt (and *missing names the first absent key) when it
// lacks some of the eight keys.
std::optional<BattleStyle> parse_arena_style(const json& m, const Where& where,
                                             std::string* missing) {
  if (!m.is_object()) fail(where, "\"conv_metadata\": expected an object, got " + m.dump());
  std::array<double, 8> v{};
  for (size_t i = 0; i < kArenaKeys.size(); ++i) {
    const auto it = m.find(kArenaKeys[i]);
    if (it == m.end()) {
      *missing = std::string("conv_metadata has no \"") + kArenaKeys[i] + "\"";
      return std::nullopt;
    }
    v[i] = parse_count(*it, "conv_metadata", kArenaKeys[i], where, true);
  }
  return to_style(v);
}

void add_battle(const json& j, const Where& where, BattleLog* log) {
  if (!j.is_object()) fail(where, "expected a JSON object (one battle), got " + j.dump());
  const std::string& a = require_name(j, "model_a", where);
  const std::string& b = require_name(j, "model_b", where);
  if (a == b) fail(where, "\"model_a\" and \"model_b\" are both \"" + a + "\"");
  Battle battle;
  battle.winner = parse_winner(j, where);
  battle.a = log->player(a);
  battle.b = log->player(b);
  const auto qid = j.find("question_id");
  if (qid == j.end() || qid->is_null()) {
    battle.prompt = log->new_prompt();
  } else if (qid->is_string()) {
    battle.prompt = log->prompt(qid->get_ref<const std::string&>());
  } else if (qid->is_number()) {
    battle.prompt = log->prompt(qid->dump());
  } else {
    fail(where, "\"question_id\": expected a string or a number, got " + qid->dump());
  }
  std::optional<BattleStyle> style;
  std::string missing;  // why there is no style, when there is none
  if (const auto s = j.find("style"); s != j.end()) {
    style = parse_flat_style(*s, where);
  } else if (const auto m = j.find("conv_metadata"); m != j.end()) {
    style = parse_arena_style(*m, where, &missing);
  }
  const bool first_without = !style && log->first_without_style().empty();
  if (first_without && missing.empty()) missing = "no \"style\" or \"conv_metadata\"";
  log->add(battle, style, first_without ? where.str() + " (" + missing + ")" : std::string());
}

}  // namespace

int32_t BattleLog::player(const std::string& name) {
  const auto [it, added] = player_index_.try_emplace(name, static_cast<int32_t>(players_.size()));
  if (added) players_.push_back(name);
  return it->second;
}

std::optional<int32_t> BattleLog::find_player(const std::string& name) const {
  const auto it = player_index_.find(name);
  if (it == player_index_.end()) return std::nullopt;
  return it->second;
}

int32_t BattleLog::prompt(const std::string& question_id) {
  const auto [it, added] = prompt_index_.try_emplace(question_id, prompts_);
  if (added) ++prompts_;
  return it->second;
}

void BattleLog::add(Battle battle, const std::optional<BattleStyle>& style,
                    const std::string& where) {
  if (style) {
    battle.style = static_cast<int32_t>(styles_.size());
    styles_.push_back(*style);
  } else {
    battle.style = -1;
    if (first_without_style_.empty()) first_without_style_ = where;
  }
  battles_.push_back(battle);
}

void read_battles(const std::string& path, BattleLog* log) {
  // Parsing the JSON is most of the reading time: each batch of lines is parsed on every core,
  // then added in file order (so players and prompts are numbered as they first appear, and
  // the first bad line is the one reported).
  constexpr size_t kBatch = 8192;
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  JsonlReader reader(path);
  std::vector<std::string> text(kBatch);
  std::vector<int64_t> line(kBatch);
  std::vector<json> value(kBatch);
  std::vector<std::exception_ptr> error(kBatch);
  for (size_t n; (n = 0, true);) {
    while (n < kBatch && reader.next_line(&text[n], &line[n]))
      ++n;
    if (n == 0) break;
    auto parse = [&](size_t part) {
      for (size_t k = part * n / threads; k < (part + 1) * n / threads; ++k) {
        try {
          value[k] = parse_jsonl_line(path, line[k], text[k]);
        } catch (...) {
          error[k] = std::current_exception();
        }
      }
    };
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t)
      pool.emplace_back(parse, t);
    parse(0);
    for (auto& t : pool)
      t.join();
    for (size_t k = 0; k < n; ++k) {
      if (error[k]) std::rethrow_exception(error[k]);
      add_battle(value[k], Where{path, line[k]}, log);
    }
  }
}

}  // namespace flywheel
