#include "trainer/eval/judged_games.h"

#include <algorithm>

#include "trainer/eval/style_control.h"

namespace flywheel {
namespace {

using nlohmann::ordered_json;

// The model a game's verdict picks, "" for a tie; only for parsed games.
const std::string& picked_model(const JudgedGame& g) {
  static const std::string kNone;
  switch (g.verdict.verdict->outcome) {
    case Outcome::kA:
      return g.a->player;
    case Outcome::kB:
      return g.b->player;
    default:
      return kNone;
  }
}

ordered_json game_header(const JudgedGame& g, const std::string& judge) {
  return {{"model_a", g.a->player},
          {"model_b", g.b->player},
          {"question_id", g.a->question_id},
          {"game", g.game},
          {"judge", judge}};
}

}  // namespace

ordered_json battle_json(const JudgedGame& g, const std::string& judge) {
  ordered_json out = game_header(g, judge);
  const JudgeVerdict& v = *g.verdict.verdict;
  out["winner"] = winner_name(v.outcome);
  out["verdict"] = v.label;
  const BattleStyle s = measure_battle_style(g.a->answer, g.b->answer);
  out["style"] = {{"len_a", s.a.length},     {"len_b", s.b.length}, {"header_a", s.a.headers},
                  {"header_b", s.b.headers}, {"list_a", s.a.lists}, {"list_b", s.b.lists},
                  {"bold_a", s.a.bold},      {"bold_b", s.b.bold}};
  out["tokens_a"] = g.a->tokens;
  out["tokens_b"] = g.b->tokens;
  if (!g.details.is_null()) out["details"] = g.details;
  return out;
}

ordered_json judgment_json(const JudgedGame& g, const std::string& judge) {
  ordered_json out = game_header(g, judge);
  if (g.verdict.verdict) {
    out["winner"] = winner_name(g.verdict.verdict->outcome);
    out["verdict"] = g.verdict.verdict->label;
  } else {
    out["winner"] = nullptr;
    out["problem"] = verdict_problem_name(g.verdict.problem);
    if (!g.verdict.found.empty()) out["found"] = g.verdict.found;
  }
  if (!g.details.is_null()) out["details"] = g.details;
  return out;
}

void JudgeStats::add_game(const JudgedGame& g) {
  ++games;
  if (!g.verdict.verdict) {
    no_verdict += g.verdict.problem == VerdictProblem::kNoVerdict;
    ambiguous += g.verdict.problem == VerdictProblem::kAmbiguous;
    unknown_label += g.verdict.problem == VerdictProblem::kUnknownLabel;
    return;
  }
  ++parsed;
  const Outcome outcome = g.verdict.verdict->outcome;
  switch (outcome) {
    case Outcome::kA:
      ++first_wins;
      break;
    case Outcome::kB:
      ++second_wins;
      break;
    default:
      ++ties;
  }
  const BattleStyle style = measure_battle_style(g.a->answer, g.b->answer);
  const int64_t la = style.a.length, lb = style.b.length;
  if (la == lb) {
    ++equal_length;
    return;
  }
  const int64_t longer = std::max(la, lb);
  const int bin = std::min<int>(
      kLengthBins - 1, static_cast<int>(kLengthBins * (longer - std::min(la, lb)) / longer));
  ++by_length_games[static_cast<size_t>(bin)];
  const bool a_longer = la > lb;
  by_length_longer_half_wins[static_cast<size_t>(bin)] +=
      outcome == Outcome::kA   ? (a_longer ? 2 : 0)
      : outcome == Outcome::kB ? (a_longer ? 0 : 2)
                               : 1;
}

void JudgeStats::add_meeting(const JudgedGame& first, const JudgedGame& swapped) {
  ++meetings;
  if (!first.verdict.verdict || !swapped.verdict.verdict) return;
  ++both_parsed;
  consistent += picked_model(first) == picked_model(swapped);
}

std::optional<double> JudgeStats::first_position_win_rate() const {
  if (parsed == 0) return std::nullopt;
  return (static_cast<double>(first_wins) + 0.5 * static_cast<double>(ties)) /
         static_cast<double>(parsed);
}

std::optional<double> JudgeStats::consistency_rate() const {
  if (both_parsed == 0) return std::nullopt;
  return static_cast<double>(consistent) / static_cast<double>(both_parsed);
}

std::optional<double> JudgeStats::longer_win_rate(int bin) const {
  int64_t n = 0, half_wins = 0;
  for (int b = 0; b < kLengthBins; ++b) {
    if (bin >= 0 && b != bin) continue;
    n += by_length_games[static_cast<size_t>(b)];
    half_wins += by_length_longer_half_wins[static_cast<size_t>(b)];
  }
  if (n == 0) return std::nullopt;
  return 0.5 * static_cast<double>(half_wins) / static_cast<double>(n);
}

ordered_json JudgeStats::to_json() const {
  auto rate = [](std::optional<double> r) { return r ? ordered_json(*r) : ordered_json(nullptr); };
  ordered_json out = {
      {"games", games},
      {"parsed", parsed},
      {"unparseable", unparseable()},
      {"unparseable_by_reason",
       {{"no_verdict", no_verdict}, {"ambiguous", ambiguous}, {"unknown_label", unknown_label}}},
      {"first_wins", first_wins},
      {"second_wins", second_wins},
      {"ties", ties}};
  // Position bias only means something when positions were swapped; a judge that scores
  // answers alone always shows the baseline first.
  if (meetings > 0) {
    out["first_position_win_rate"] = rate(first_position_win_rate());
    out["swapped_meetings"] = meetings;
    out["both_orders_parsed"] = both_parsed;
    out["consistent"] = consistent;
    out["consistency_rate"] = rate(consistency_rate());
  }
  ordered_json bins = ordered_json::array();
  for (int b = 0; b < kLengthBins; ++b) {
    bins.push_back({{"relative_difference_from", static_cast<double>(b) / kLengthBins},
                    {"to", static_cast<double>(b + 1) / kLengthBins},
                    {"games", by_length_games[static_cast<size_t>(b)]},
                    {"longer_win_rate", rate(longer_win_rate(b))}});
  }
  out["length_bias"] = {{"longer_win_rate", rate(longer_win_rate())},
                        {"equal_length", equal_length},
                        {"by_relative_difference", bins}};
  return out;
}

}  // namespace flywheel
