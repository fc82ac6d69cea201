// The Bradley–Terry model on the Elo scale, fitted by maximum likelihood as Chatbot Arena's
// compute_mle_elo (fastchat/serve/monitor/elo_analysis.py, scikit-learn's LogisticRegression
// without penalty) and its style-controlled variant (rating_systems.py's contextual BT):
//
//   P(i beats j) = 1 / (1 + base^((R_j - R_i) / scale)),   R = init + scale * β
//
// so with α = ln(base) the log-odds of i over j are α (β_i - β_j) (+ θ · x for battles with
// style features x). A tie counts as half a win and half a loss: the likelihood of a battle with
// outcome y ∈ {1, ½, 0} for its first side is p^y (1 - p)^(1 - y), which is what fastchat's
// counting of a win twice and a tie once on each side computes, up to a factor of 2.
//
// The ratings are fixed only up to a common shift. Starting from zero, as scikit-learn's lbfgs
// does, every gradient sums to zero over the players, so its fit keeps Σ β = 0: the mean rating
// is `init`. The solver returns that gauge.
//
// Legend: P = players, K = style features, N = battles with features.
#pragma once

#include <cstdint>
#include <vector>

namespace flywheel {

struct EloScale {
  double scale = 400;
  double base = 10;
  double init = 1000;
};

// Every battle between players i and j of one kind, summed (feature-free battles only).
struct PairCount {
  int32_t i = 0;
  int32_t j = 0;
  double games = 0;  // total weight
  double score = 0;  // i's wins + half its ties, weighted
};

// Battles with style features, one row each, as a view of caller-owned arrays.
struct FeatureRows {
  int features = 0;                 // K
  const int32_t* a = nullptr;       // [N] first player
  const int32_t* b = nullptr;       // [N] second player
  const double* outcome = nullptr;  // [N] 1, 0.5 or 0 for a
  const double* weight = nullptr;   // [N] >= 0; rows of weight 0 are skipped
  const double* x = nullptr;        // [N, K] features
  int64_t rows = 0;                 // N
};

struct BtSolverOptions {
  // L2 penalty l2/2 · (|β|² + |θ|²) on the negative log-likelihood; 0 = none (plain BT).
  double l2 = 0;
  // Newton stops when no parameter moves by more than this (β units: 1e-10 is 4e-8 Elo).
  double tolerance = 1e-10;
  int max_iterations = 100;
};

struct BtSolution {
  std::vector<double> beta;   // [P]; 0 for a player in no battle
  std::vector<double> theta;  // [K] style coefficients (log-odds per unit of feature)
  std::vector<bool> present;  // [P] whether the player is in a battle of positive weight
  int iterations = 0;
  bool converged = false;
};

// argmin of the penalized negative log-likelihood of `pairs` and `rows` (either may be empty),
// by damped Newton from zero. Σ β = 0 over the present players. The plain MLE (l2 = 0) exists
// only when the comparisons are strongly connected (see ComparisonGraph); otherwise some
// ratings run off to infinity and the solver stops at max_iterations, not converged.
BtSolution solve_bradley_terry(int players, const std::vector<PairCount>& pairs,
                               const FeatureRows& rows, double alpha,
                               const BtSolverOptions& options);

// ---- when does the MLE exist ----

// Who scored against whom: an edge i -> j when i won or tied a battle against j. The plain
// Bradley–Terry MLE is finite iff this graph is strongly connected over the present players
// (Zermelo 1929; Ford 1957). If not, the players split into groups (strongly connected
// components); a group no outsider ever scored against "never lost", and a group that never
// scored against an outsider "never won", and their gaps to the others diverge. Groups that
// never met at all appear in both lists: their gaps are not divergent but undetermined.
struct ComparisonGraph {
  bool strongly_connected = true;
  std::vector<std::vector<int32_t>> components;  // undirected: who ever met; one if connected
  std::vector<std::vector<int32_t>> never_lost;  // groups nobody outside beat or tied
  std::vector<std::vector<int32_t>> never_won;   // groups that beat or tied nobody outside
};

ComparisonGraph analyze_comparisons(int players, const std::vector<PairCount>& pairs,
                                    const std::vector<bool>& present);

}  // namespace flywheel
