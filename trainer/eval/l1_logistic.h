// L1-regularized logistic regression with soft labels and sample weights: the fit behind
// AlpacaEval's length-controlled win rate (alpaca_eval/metrics/glm_winrate.py fits it with
// scikit-learn's LogisticRegressionCV, liblinear, penalty "l1", no intercept, C chosen by
// 5-fold cross-validation on the log loss). Rows are sparse, so the same solver fits the
// three-feature per-model GLM and the joint GLM with one feature per instruction.
//
// The objective, for coefficients w and rows i with features x_i, target t_i ∈ [0, 1] (the
// probability that the outcome is 1: a tie is 0.5) and sample weight s_i:
//
//   F(w) = ||w||_1 + C Σ_i s_i ℓ(t_i, x_i·w),   ℓ(t, z) = log(1 + e^z) − t z
//
// which is liblinear's objective on scikit-learn's duplicated rows (each row once with label 1
// and weight t s, once with label 0 and weight (1 − t) s), as glm_winrate.py builds them.
// It is minimized by proximal Newton (the method of liblinear's L1 solver, newGLMNET): each
// outer step minimizes the L1 term plus the quadratic model of the loss by coordinate descent,
// then backtracks along that direction; unlike liblinear's default tolerance of 1e-4 it runs
// until the optimality conditions hold to `tolerance`.
#pragma once

#include <utility>
#include <vector>

namespace flywheel {

// One row of the design matrix with its soft label.
struct LogisticRow {
  std::vector<std::pair<int, double>> x;  // (feature index, value), the nonzero features
  double target = 0.5;                    // P(outcome = 1) ∈ [0, 1]
  double weight = 1.0;                    // sample weight s_i >= 0
};

struct L1LogisticOptions {
  // Stop when every coefficient's minimum-norm subgradient is below tolerance times its
  // largest value at w = 0 (liblinear measures the same ratio, with the L1 norm, against 1e-4).
  double tolerance = 1e-10;
  int max_iterations = 500;  // outer (Newton) steps
};

struct L1LogisticFit {
  std::vector<double> coef;  // w, one per feature
  int iterations = 0;
  bool converged = false;
};

// argmin_w F(w) above; `start` (optional) is where the search begins (a warm start).
L1LogisticFit fit_l1_logistic(const std::vector<LogisticRow>& rows, int num_features, double C,
                              const L1LogisticOptions& options,
                              const std::vector<double>& start = {});

// The weighted soft log loss scikit-learn's scorer in glm_winrate.py computes on a test fold:
// −mean_i s_i [t_i log q_i + (1 − t_i) log(1 − q_i)], q_i = logistic(x_i·w) clipped to
// [1e-15, 1 − 1e-15]; the mean divides by the number of rows, not by the sum of weights.
double soft_log_loss(const std::vector<LogisticRow>& rows, const std::vector<double>& coef);

// ---- choosing C by cross-validation ----

struct L1LogisticCvOptions {
  // LogisticRegressionCV's default grid: 10 values of C log-spaced from 1e-4 to 1e4.
  std::vector<double> Cs = default_cs();
  int folds = 5;
  L1LogisticOptions fit;

  static std::vector<double> default_cs();
};

struct L1LogisticCvFit {
  std::vector<double> coef;         // refitted on all rows with the chosen C
  double C = 0;                     // the chosen C
  std::vector<double> mean_losses;  // per C: the test-fold soft log loss, averaged over folds
  bool converged = true;            // every fit met its tolerance
};

// Fits every C on every fold's training rows, keeps the C whose mean test-fold soft_log_loss is
// lowest (the first on a tie, as scikit-learn's argmax of scores does), and refits on all rows.
// Folds are those of scikit-learn's GroupKFold with one group per row, which glm_winrate.py
// uses: row r of n goes to fold (n − 1 − r) mod folds. Fewer rows than folds: the first C of a
// one-value grid is used as is; otherwise UserError.
L1LogisticCvFit fit_l1_logistic_cv(const std::vector<LogisticRow>& rows, int num_features,
                                   const L1LogisticCvOptions& options);

}  // namespace flywheel
