#include "trainer/eval/leaderboard.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include "trainer/eval/online_elo.h"

namespace flywheel {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// "a, b, c" (at most 8 names, then "and N more").
std::string names(const BattleLog& log, const std::vector<int32_t>& group) {
  std::string out;
  for (size_t k = 0; k < group.size() && k < 8; ++k)
    out += (k ? ", " : "") + log.players()[group[k]];
  if (group.size() > 8) out += " and " + std::to_string(group.size() - 8) + " more";
  return out;
}

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Warnings about a fit on the whole log whose MLE diverged.
void warn_capped(const BattleLog& log, const RatingFit& fit, double virtual_tie,
                 std::vector<std::string>* warnings) {
  std::string why;
  for (const auto& group : fit.graph.never_lost) {
    why += (why.empty() ? "" : "; ") + names(log, group) +
           (group.size() == 1 ? " won every battle it played"
                              : " never lost or tied against anyone outside that group");
  }
  for (const auto& group : fit.graph.never_won) {
    why += (why.empty() ? "" : "; ") + names(log, group) +
           (group.size() == 1 ? " lost every battle it played"
                              : " never won or tied against anyone outside that group");
  }
  warnings->push_back("the Bradley-Terry maximum-likelihood ratings do not exist (" + why +
                      "): their gaps to the others grow without bound, so " +
                      format("%g", virtual_tie) +
                      " battles of ties were added between every two players to keep the "
                      "ratings finite; read those players' ratings as bounds");
}

}  // namespace

bool clearly_above(double a, double b) {
  return std::isfinite(b) ? a - b > 1e-9 * std::max(1.0, std::abs(b)) : a > b;
}

std::vector<int> interval_ranks(const std::vector<double>& lower,
                                const std::vector<double>& upper) {
  std::vector<int> rank(lower.size(), 1);
  for (size_t i = 0; i < lower.size(); ++i) {
    for (size_t j = 0; j < lower.size(); ++j)
      rank[i] += clearly_above(lower[j], upper[i]);
  }
  return rank;
}

RatedLog rate_log(const BattleLog& log, const RatingOptions& options, const BootstrapOptions& boot,
                  std::optional<std::string> baseline) {
  const auto start = std::chrono::steady_clock::now();
  const auto since = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  RatedLog out;
  std::vector<int32_t> unit_of_battle = resampling_units(log, boot.unit, &out.units);
  const Rater rater(log, options, std::move(unit_of_battle), out.units);
  const RatingFit fit = rater.fit(std::vector<int32_t>(static_cast<size_t>(out.units), 1));
  OnlineEloOptions elo_options;
  elo_options.elo = options.elo;
  const std::vector<double> online = online_elo(log, elo_options);
  out.fit_seconds = since();
  const BootstrapResult rounds = bootstrap_ratings(rater, boot);
  out.bootstrap_seconds = since() - out.fit_seconds;
  LeaderboardInputs inputs;
  inputs.log = &log;
  inputs.fit = &fit;
  inputs.boot = &rounds;
  inputs.online = &online;
  inputs.options = &options;
  inputs.baseline = std::move(baseline);
  out.board = build_leaderboard(inputs);
  return out;
}

Leaderboard build_leaderboard(const LeaderboardInputs& in) {
  const BattleLog& log = *in.log;
  const RatingFit& fit = *in.fit;
  const BootstrapResult& boot = *in.boot;
  const RatingOptions& options = *in.options;
  const int players = static_cast<int>(log.players().size());
  const int rounds = static_cast<int>(boot.ratings.size());
  if (fit.graph.components.size() > 1) {
    std::string groups;
    for (const auto& c : fit.graph.components)
      groups += (groups.empty() ? "{" : "}, {") + names(log, c);
    throw UserError(
        "the battles split the players into groups that never met, so their ratings "
        "are not comparable: " +
        groups + "}; rate each group on its own");
  }
  Leaderboard board;
  board.baseline = in.baseline;
  std::optional<int32_t> baseline;
  if (in.baseline) {
    baseline = log.find_player(*in.baseline);
    if (!baseline)
      throw UserError("baseline: no battle has a player named \"" + *in.baseline + "\"");
  }
  if (fit.capped) warn_capped(log, fit, options.virtual_tie, &board.warnings);
  if (boot.capped_rounds > 0)
    board.warnings.push_back(
        std::to_string(boot.capped_rounds) + " of " + std::to_string(rounds) +
        " bootstrap rounds drew battles in which some player never lost or never won against "
        "the rest; those rounds were kept finite with virtual ties the same way, so the "
        "interval ends of the players involved stand for unbounded ones");
  if (boot.anchor_missing_rounds > 0)
    board.warnings.push_back(std::to_string(boot.anchor_missing_rounds) + " of " +
                             std::to_string(rounds) +
                             " bootstrap rounds drew no battle of the "
                             "anchor " +
                             *options.anchor + " and were left out");
  if (!fit.converged || boot.unconverged_rounds > 0)
    board.warnings.push_back("a Bradley-Terry fit stopped before converging (" +
                             std::to_string(boot.unconverged_rounds + !fit.converged) +
                             " fits); its ratings are approximate");

  std::vector<int64_t> battles(players, 0);
  for (const Battle& b : log.battles()) {
    ++battles[b.a];
    ++battles[b.b];
  }
  std::vector<double> lower(players), upper(players);
  for (int i = 0; i < players; ++i) {
    std::vector<double> samples(rounds);
    for (int r = 0; r < rounds; ++r)
      samples[r] = boot.ratings[r][i];
    lower[i] = rounds > 0 ? percentile(samples, 0.025) : fit.rating[i];
    upper[i] = rounds > 0 ? percentile(samples, 0.975) : fit.rating[i];
  }
  const std::vector<int> rank = interval_ranks(lower, upper);
  const EloScale& e = options.elo;
  auto win_rate = [&](double gap) { return 100 / (1 + std::pow(e.base, -gap / e.scale)); };
  for (int i = 0; i < players; ++i) {
    LeaderboardRow row;
    row.name = log.players()[i];
    row.rating = fit.rating[i];
    row.lower = rounds > 0 ? lower[i] : kNaN;
    row.upper = rounds > 0 ? upper[i] : kNaN;
    row.rank = rank[i];
    row.battles = battles[i];
    row.online_elo = (*in.online)[i];
    row.win_rate = row.win_lower = row.win_upper = kNaN;
    if (baseline) {
      row.win_rate = win_rate(fit.rating[i] - fit.rating[*baseline]);
      if (rounds > 0) {
        std::vector<double> gaps(rounds);
        for (int r = 0; r < rounds; ++r)
          gaps[r] = boot.ratings[r][i] - boot.ratings[r][*baseline];
        row.win_lower = win_rate(percentile(gaps, 0.025));
        row.win_upper = win_rate(percentile(gaps, 0.975));
      }
    }
    board.rows.push_back(row);
  }
  std::sort(board.rows.begin(), board.rows.end(), [](const auto& x, const auto& y) {
    return x.rating != y.rating ? x.rating > y.rating : x.name < y.name;
  });
  for (int k = 0; k < kStyleFeatures && options.style_control; ++k) {
    std::vector<double> samples(rounds);
    for (int r = 0; r < rounds; ++r)
      samples[r] = boot.style[r][k];
    board.style.push_back({kStyleFeatureNames[k], fit.style[k],
                           rounds > 0 ? percentile(samples, 0.025) : kNaN,
                           rounds > 0 ? percentile(samples, 0.975) : kNaN});
  }
  return board;
}

std::string leaderboard_markdown(const Leaderboard& board) {
  // "+4.2 / -3.9" around `center`, or "-" without an interval.
  auto interval = [](double lower, double center, double upper) {
    if (std::isnan(lower) || std::isnan(upper)) return std::string("-");
    return format("+%.1f", upper - center) + " / " + format("-%.1f", center - lower);
  };
  std::string out = "| Rank | Player | Rating | 95% CI | Battles | Online Elo |";
  std::string rule = "| ---: | --- | ---: | ---: | ---: | ---: |";
  if (board.baseline) {
    out += " Win rate vs " + *board.baseline + " (%) | 95% CI |";
    rule += " ---: | ---: |";
  }
  out += "\n" + rule + "\n";
  for (const LeaderboardRow& r : board.rows) {
    out += "| " + std::to_string(r.rank) + " | " + r.name + " | " + format("%.1f", r.rating) +
           " | " + interval(r.lower, r.rating, r.upper) + " | " + std::to_string(r.battles) +
           " | " + format("%.1f", r.online_elo) + " |";
    if (board.baseline)
      out += " " + format("%.1f", r.win_rate) + " | " +
             interval(r.win_lower, r.win_rate, r.win_upper) + " |";
    out += "\n";
  }
  if (!board.style.empty()) {
    out +=
        "\nStyle coefficients (change in log-odds per standard deviation of the feature):\n\n"
        "| Feature | Coefficient | 95% interval |\n| --- | ---: | ---: |\n";
    for (const StyleRow& s : board.style) {
      out += "| " + s.feature + " | " +
             (std::isnan(s.coef) ? std::string("- (never varies)") : format("%.4f", s.coef)) +
             " | " +
             (std::isnan(s.lower) ? std::string("-")
                                  : format("%.4f", s.lower) + " .. " + format("%.4f", s.upper)) +
             " |\n";
    }
  }
  return out;
}

nlohmann::ordered_json leaderboard_json(const Leaderboard& board) {
  using nlohmann::ordered_json;
  // nlohmann writes NaN as null; say so explicitly rather than rely on it.
  auto number = [](double v) { return std::isnan(v) ? ordered_json() : ordered_json(v); };
  ordered_json out;
  out["players"] = ordered_json::array();
  for (const LeaderboardRow& r : board.rows) {
    ordered_json p = {{"name", r.name},
                      {"rating", r.rating},
                      {"lower", number(r.lower)},
                      {"upper", number(r.upper)},
                      {"rank", r.rank},
                      {"battles", r.battles},
                      {"online_elo", r.online_elo}};
    if (board.baseline) {
      p["win_rate"] = number(r.win_rate);
      p["win_rate_lower"] = number(r.win_lower);
      p["win_rate_upper"] = number(r.win_upper);
    }
    out["players"].push_back(p);
  }
  if (board.baseline) out["baseline"] = *board.baseline;
  if (!board.style.empty()) {
    out["style"] = ordered_json::object();
    for (const StyleRow& s : board.style)
      out["style"][s.feature] = {
          {"coef", number(s.coef)}, {"lower", number(s.lower)}, {"upper", number(s.upper)}};
  }
  out["warnings"] = board.warnings;
  return out;
}

}  // namespace flywheel
