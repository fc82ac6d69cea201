#include "trainer/eval/rating.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace flywheel {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

double outcome_of(Winner w) {
  return w == Winner::kA ? 1.0 : w == Winner::kB ? 0.0 : 0.5;
}

}  // namespace

void RatingOptions::validate() const {
  if (!(elo.scale > 0) || !(elo.base > 1) || !std::isfinite(elo.init))
    throw UserError(
        "ratings: the Elo scale must be > 0, the base > 1 and the initial rating "
        "finite");
  if (!(style_l2 > 0))
    throw UserError("style control: the L2 penalty must be > 0 (Chatbot Arena uses 0.5), got " +
                    number(style_l2));
  if (!(virtual_tie > 0))
    throw UserError("ratings: the virtual ties must be > 0, got " + number(virtual_tie));
  if (!std::isfinite(anchor_rating))
    throw UserError("ratings: the anchor rating must be a finite number");
}

Rater::Rater(const BattleLog& log, const RatingOptions& options,
             std::vector<int32_t> unit_of_battle, int32_t units)
    : options_(options),
      players_(static_cast<int>(log.players().size())),
      units_(units),
      unit_of_battle_(std::move(unit_of_battle)) {
  options_.validate();
  if (options_.anchor) {
    anchor_ = log.find_player(*options_.anchor);
    if (!anchor_)
      throw UserError("anchor: no battle has a player named \"" + *options_.anchor + "\"");
  }
  const auto& battles = log.battles();
  std::unordered_map<int64_t, int32_t> pair_id;
  std::vector<int32_t> battle_pair(battles.size());
  for (size_t b = 0; b < battles.size(); ++b) {
    const int32_t i = std::min(battles[b].a, battles[b].b),
                  j = std::max(battles[b].a, battles[b].b);
    const auto [it, added] =
        pair_id.try_emplace(int64_t{i} * players_ + j, static_cast<int32_t>(pairs_.size()));
    if (added) pairs_.emplace_back(i, j);
    battle_pair[b] = it->second;
  }
  if (options_.style_control) {
    style_ = style_matrix(log);
    row_pair_ = std::move(battle_pair);
    for (const Battle& b : battles) {
      row_a_.push_back(b.a);
      row_b_.push_back(b.b);
      row_outcome_.push_back(outcome_of(b.winner));
      row_weight_.push_back(b.weight);
    }
    return;
  }
  // Sum each unit's battles per pair: sort battle indices by (unit, pair), merge runs.
  std::vector<int32_t> order(battles.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
    return unit_of_battle_[x] != unit_of_battle_[y] ? unit_of_battle_[x] < unit_of_battle_[y]
                                                    : battle_pair[x] < battle_pair[y];
  });
  unit_begin_.assign(units_ + 1, 0);
  for (size_t k = 0; k < order.size(); ++k) {
    const int32_t b = order[k];
    const Battle& battle = battles[b];
    const double w = battle.weight;
    // The score of the pair's lower-numbered player.
    const double score_a = w * outcome_of(battle.winner);
    const double score = battle.a < battle.b ? score_a : w - score_a;
    const bool same = k > 0 && unit_of_battle_[order[k - 1]] == unit_of_battle_[b] &&
                      battle_pair[order[k - 1]] == battle_pair[b];
    if (same) {
      entry_games_.back() += w;
      entry_score_.back() += score;
      continue;
    }
    entry_pair_.push_back(battle_pair[b]);
    entry_games_.push_back(w);
    entry_score_.push_back(score);
    ++unit_begin_[unit_of_battle_[b] + 1];
  }
  std::partial_sum(unit_begin_.begin(), unit_begin_.end(), unit_begin_.begin());
}

RatingFit Rater::fit(const std::vector<int32_t>& unit_counts) const {
  const double alpha = std::log(options_.elo.base);
  std::vector<double> games(pairs_.size(), 0.0), score(pairs_.size(), 0.0);
  std::vector<double> row_weight;
  if (options_.style_control) {
    row_weight.resize(row_weight_.size());
    for (size_t r = 0; r < row_weight_.size(); ++r) {
      row_weight[r] = row_weight_[r] * unit_counts[unit_of_battle_[r]];
      games[row_pair_[r]] += row_weight[r];
      const double s = row_weight[r] * row_outcome_[r];
      score[row_pair_[r]] += row_a_[r] < row_b_[r] ? s : row_weight[r] - s;
    }
  } else {
    for (int32_t u = 0; u < units_; ++u) {
      const double c = unit_counts[u];
      if (c == 0) continue;
      for (int64_t e = unit_begin_[u]; e < unit_begin_[u + 1]; ++e) {
        games[entry_pair_[e]] += c * entry_games_[e];
        score[entry_pair_[e]] += c * entry_score_[e];
      }
    }
  }
  std::vector<PairCount> pairs;
  std::vector<bool> present(players_, false);
  for (size_t k = 0; k < pairs_.size(); ++k) {
    if (games[k] == 0) continue;
    pairs.push_back({pairs_[k].first, pairs_[k].second, games[k], score[k]});
    present[pairs_[k].first] = present[pairs_[k].second] = true;
  }
  ComparisonGraph graph = analyze_comparisons(players_, pairs, present);
  if (options_.style_control) {
    FeatureRows rows;
    rows.features = kStyleFeatures;
    rows.a = row_a_.data();
    rows.b = row_b_.data();
    rows.outcome = row_outcome_.data();
    rows.weight = row_weight.data();
    rows.x = style_.x.data();
    rows.rows = static_cast<int64_t>(row_weight.size());
    BtSolverOptions solver;
    solver.l2 = options_.style_l2;
    return finish(solve_bradley_terry(players_, {}, rows, alpha, solver), std::move(graph), false);
  }
  const bool capped = !graph.strongly_connected;
  if (capped) {
    // Complete the comparisons with virtual ties between every two present players.
    std::vector<int32_t> index(static_cast<size_t>(players_) * players_, -1);
    for (size_t k = 0; k < pairs.size(); ++k)
      index[static_cast<size_t>(pairs[k].i) * players_ + pairs[k].j] = static_cast<int32_t>(k);
    for (int32_t i = 0; i < players_; ++i) {
      for (int32_t j = i + 1; j < players_ && present[i]; ++j) {
        if (!present[j]) continue;
        int32_t& k = index[static_cast<size_t>(i) * players_ + j];
        if (k < 0) {
          k = static_cast<int32_t>(pairs.size());
          pairs.push_back({i, j, 0, 0});
        }
        pairs[k].games += options_.virtual_tie;
        pairs[k].score += options_.virtual_tie / 2;
      }
    }
  }
  return finish(solve_bradley_terry(players_, pairs, FeatureRows{}, alpha, BtSolverOptions{}),
                std::move(graph), capped);
}

RatingFit Rater::finish(const BtSolution& solution, ComparisonGraph graph, bool capped) const {
  RatingFit out;
  out.capped = capped;
  out.converged = solution.converged;
  out.graph = std::move(graph);
  out.rating.assign(players_, kNaN);
  for (int i = 0; i < players_; ++i) {
    if (solution.present[i])
      out.rating[i] = options_.elo.init + options_.elo.scale * solution.beta[i];
  }
  if (anchor_) {
    const double shift = options_.anchor_rating - out.rating[*anchor_];
    out.anchor_missing = std::isnan(shift);
    for (double& r : out.rating)
      r += shift;  // NaN everywhere when the anchor is missing
  }
  out.style.fill(kNaN);
  for (int k = 0; k < kStyleFeatures && options_.style_control; ++k) {
    if (style_.varies[k]) out.style[k] = solution.theta[k];
  }
  return out;
}

}  // namespace flywheel
