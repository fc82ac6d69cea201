#include "trainer/eval/l1_logistic.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

// logistic(z) without overflow for large |z|.
double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

// log(1 + e^(z + h)) − log(1 + e^z), exact for small h (log1p of s·expm1(h), s = logistic(z))
// and free of log1p(−1) for very negative h, where 1 + s·(e^h − 1) = logistic(−z) + s e^h.
double softplus_change(double z, double h) {
  const double s = sigmoid(z);
  if (std::abs(h) < 1.0) return std::log1p(s * std::expm1(h));
  return std::log(sigmoid(-z) + s * std::exp(h));
}

// Features stored by column too: coordinate descent visits one coefficient at a time.
using Columns = std::vector<std::vector<std::pair<int, double>>>;

Columns by_column(const std::vector<LogisticRow>& rows, int num_features) {
  Columns cols(static_cast<size_t>(num_features));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!(rows[i].target >= 0 && rows[i].target <= 1 && rows[i].weight >= 0))
      throw UserError("logistic fit: row " + std::to_string(i) +
                      " needs a target in [0, 1] and a weight >= 0");
    for (const auto& [j, v] : rows[i].x) {
      if (j < 0 || j >= num_features)
        throw UserError("logistic fit: feature index " + std::to_string(j) + " outside [0, " +
                        std::to_string(num_features) + ")");
      cols[static_cast<size_t>(j)].emplace_back(static_cast<int>(i), v);
    }
  }
  return cols;
}

// The loss's gradient g = Σ_i c_i (σ(z_i) − t_i) x_i and the rows' curvatures
// D_i = c_i σ(z_i)(1 − σ(z_i)), c_i = C s_i.
void gradient_and_curvature(const std::vector<LogisticRow>& rows, const Columns& cols,
                            const std::vector<double>& z, double C, std::vector<double>* g,
                            std::vector<double>* curvature) {
  std::vector<double> residual(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const double c = C * rows[i].weight;
    const double s = sigmoid(z[i]);
    residual[i] = c * (s - rows[i].target);
    (*curvature)[i] = c * s * sigmoid(-z[i]);
  }
  for (size_t j = 0; j < cols.size(); ++j) {
    double sum = 0;
    for (const auto& [i, v] : cols[j])
      sum += residual[static_cast<size_t>(i)] * v;
    (*g)[j] = sum;
  }
}

// The largest minimum-norm subgradient of F over the coefficients: zero exactly at the optimum.
double violation(const std::vector<double>& g, const std::vector<double>& w) {
  double worst = 0;
  for (size_t j = 0; j < w.size(); ++j) {
    const double v = w[j] > 0   ? g[j] + 1.0
                     : w[j] < 0 ? g[j] - 1.0
                                : std::max(std::abs(g[j]) - 1.0, 0.0);
    worst = std::max(worst, std::abs(v));
  }
  return worst;
}

// argmin over t of t·a + ½ t² b + Σ_j |c_j + t p_j| (b > 0): a convex piecewise quadratic whose
// derivative b t + K(t) increases, K jumping by 2|p_j| at each breakpoint t = −c_j / p_j.
double line_minimum(double a, double b, const std::vector<double>& c,
                    const std::vector<double>& p) {
  std::vector<std::pair<double, double>> breaks;  // (breakpoint, |p_j|)
  double k = a;
  for (size_t j = 0; j < p.size(); ++j) {
    if (p[j] == 0) continue;
    breaks.emplace_back(-c[j] / p[j], std::abs(p[j]));
    k -= std::abs(p[j]);
  }
  std::sort(breaks.begin(), breaks.end());
  for (const auto& [t, jump] : breaks) {
    if (b * t + k >= 0) return -k / b;        // the root lies before this breakpoint
    if (b * t + k + 2 * jump >= 0) return t;  // zero is in the subdifferential here
    k += 2 * jump;
  }
  return -k / b;
}

// Minimizes g·d + ½ dᵀ Xᵀ D X d + ||w + d||_1 over d by cyclic coordinate descent, keeping
// u = X d per row, until the subproblem's own minimum-norm subgradient is below `tolerance`:
// an inexact Newton step whose accuracy the caller tightens as the outer iteration converges.
// Correlated features (a player's bias and the instructions' one-hot columns) leave nearly flat
// directions along which plain sweeps crawl (thousands of sweeps on AlpacaEval-sized joint
// fits); so after each sweep the subproblem is also minimized exactly along the sweep's total
// change made conjugate to the previous such direction — conjugate gradients with the sweep as
// preconditioner — which cut the sweeps about twentyfold there.
void newton_direction(const Columns& cols, const std::vector<double>& g,
                      const std::vector<double>& curvature, const std::vector<double>& w,
                      double tolerance, std::vector<double>* d, std::vector<double>* u) {
  const size_t p = cols.size();
  std::vector<double> h(p, 0.0);
  for (size_t j = 0; j < p; ++j)
    for (const auto& [i, v] : cols[j])
      h[j] += curvature[static_cast<size_t>(i)] * v * v;
  constexpr int kMaxSweeps = 10000;
  // dir: the last search direction, x_dir = X dir per row.
  std::vector<double> d_before(p), u_before(u->size()), c(p), dir(p, 0.0), x_dir(u->size(), 0.0);
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    d_before = *d;
    u_before = *u;
    double worst = 0;
    for (size_t j = 0; j < p; ++j) {
      const double a = w[j] + (*d)[j];
      double step;
      if (h[j] <= 0) {
        step = -a;  // a feature no row uses: only the penalty acts on it
      } else {
        double grad = g[j];
        for (const auto& [i, v] : cols[j])
          grad += curvature[static_cast<size_t>(i)] * (*u)[static_cast<size_t>(i)] * v;
        worst = std::max(worst, std::abs(a > 0   ? grad + 1.0
                                         : a < 0 ? grad - 1.0
                                                 : std::max(std::abs(grad) - 1.0, 0.0)));
        // argmin over δ of grad·δ + ½ h δ² + |a + δ|: a soft-thresholded Newton step.
        if (grad + 1.0 <= h[j] * a) {
          step = -(grad + 1.0) / h[j];
        } else if (grad - 1.0 >= h[j] * a) {
          step = -(grad - 1.0) / h[j];
        } else {
          step = -a;
        }
      }
      if (step == 0) continue;
      (*d)[j] += step;
      for (const auto& [i, v] : cols[j])
        (*u)[static_cast<size_t>(i)] += step * v;
    }
    if (worst <= tolerance) break;
    // The sweep's change, made H-conjugate to the previous direction, then an exact
    // minimization of the subproblem along it.
    double conj_num = 0, conj_den = 0;
    for (size_t i = 0; i < x_dir.size(); ++i) {
      const double change = (*u)[i] - u_before[i];
      conj_num += curvature[i] * change * x_dir[i];
      conj_den += curvature[i] * x_dir[i] * x_dir[i];
    }
    const double beta = sweep > 0 && conj_den > 0 ? -conj_num / conj_den : 0.0;
    double a = 0, b = 0;
    for (size_t j = 0; j < p; ++j) {
      dir[j] = (*d)[j] - d_before[j] + beta * dir[j];
      c[j] = w[j] + (*d)[j];
      a += g[j] * dir[j];
    }
    for (size_t i = 0; i < x_dir.size(); ++i) {
      x_dir[i] = (*u)[i] - u_before[i] + beta * x_dir[i];
      a += curvature[i] * (*u)[i] * x_dir[i];
      b += curvature[i] * x_dir[i] * x_dir[i];
    }
    if (b <= 0) continue;
    const double t = line_minimum(a, b, c, dir);
    for (size_t j = 0; j < p; ++j)
      (*d)[j] += t * dir[j];
    for (size_t i = 0; i < x_dir.size(); ++i)
      (*u)[i] += t * x_dir[i];
  }
}

double l1_norm_change(const std::vector<double>& w, const std::vector<double>& d, double beta) {
  double change = 0;
  for (size_t j = 0; j < w.size(); ++j)
    change += std::abs(w[j] + beta * d[j]) - std::abs(w[j]);
  return change;
}

}  // namespace

std::vector<double> L1LogisticCvOptions::default_cs() {
  std::vector<double> cs;
  for (int k = 0; k < 10; ++k)
    cs.push_back(std::pow(10.0, -4.0 + 8.0 * k / 9.0));
  return cs;
}

L1LogisticFit fit_l1_logistic(const std::vector<LogisticRow>& rows, int num_features, double C,
                              const L1LogisticOptions& options, const std::vector<double>& start) {
  if (!(C > 0)) throw UserError("logistic fit: C must be > 0, got " + std::to_string(C));
  const Columns cols = by_column(rows, num_features);
  const size_t n = rows.size();
  const size_t p = static_cast<size_t>(num_features);

  L1LogisticFit fit;
  std::vector<double> g(p), curvature(n), z(n, 0.0);
  // The scale of the stopping rule: the violation at w = 0. Zero means w = 0 is optimal.
  gradient_and_curvature(rows, cols, z, C, &g, &curvature);
  const double scale = violation(g, std::vector<double>(p, 0.0));
  fit.coef.assign(p, 0.0);
  if (scale == 0) {
    fit.converged = true;
    return fit;
  }
  if (!start.empty()) {
    fit.coef = start;
    fit.coef.resize(p, 0.0);
    for (size_t i = 0; i < n; ++i) {
      z[i] = 0;
      for (const auto& [j, v] : rows[i].x)
        z[i] += fit.coef[static_cast<size_t>(j)] * v;
    }
  }
  std::vector<double>& w = fit.coef;
  for (fit.iterations = 0; fit.iterations < options.max_iterations; ++fit.iterations) {
    gradient_and_curvature(rows, cols, z, C, &g, &curvature);
    const double current = violation(g, w);
    if (current <= options.tolerance * scale) {
      fit.converged = true;
      break;
    }
    std::vector<double> d(p, 0.0), u(n, 0.0);
    newton_direction(cols, g, curvature, w, 0.1 * current, &d, &u);
    // Backtracking (Armijo) on the exact change of F, summed term by term so that it stays
    // accurate when the change is many orders of magnitude below F itself.
    double predicted = l1_norm_change(w, d, 1.0);
    for (size_t j = 0; j < p; ++j)
      predicted += g[j] * d[j];
    double beta = 1.0;
    bool accepted = false;
    for (int halving = 0; halving < 60 && !accepted; ++halving, beta *= 0.5) {
      double change = l1_norm_change(w, d, beta);
      for (size_t i = 0; i < n; ++i) {
        const double step = beta * u[i];
        change += C * rows[i].weight * (softplus_change(z[i], step) - rows[i].target * step);
      }
      accepted = change <= 0.01 * beta * predicted;
      if (accepted) {
        for (size_t j = 0; j < p; ++j)
          w[j] += beta * d[j];
        for (size_t i = 0; i < n; ++i)
          z[i] += beta * u[i];
      }
    }
    // No decrease is representable any more: the optimum is reached to rounding.
    if (!accepted) {
      gradient_and_curvature(rows, cols, z, C, &g, &curvature);
      fit.converged = violation(g, w) <= 1e-6 * scale;
      break;
    }
  }
  return fit;
}

double soft_log_loss(const std::vector<LogisticRow>& rows, const std::vector<double>& coef) {
  if (rows.empty()) return 0;
  double total = 0;
  for (const auto& row : rows) {
    double z = 0;
    for (const auto& [j, v] : row.x)
      z += coef[static_cast<size_t>(j)] * v;
    const double q = std::clamp(sigmoid(z), 1e-15, 1 - 1e-15);
    total += row.weight * (row.target * std::log(q) + (1 - row.target) * std::log(1 - q));
  }
  return -total / static_cast<double>(rows.size());
}

L1LogisticCvFit fit_l1_logistic_cv(const std::vector<LogisticRow>& rows, int num_features,
                                   const L1LogisticCvOptions& options) {
  if (options.Cs.empty()) throw UserError("logistic fit: the grid of C values is empty");
  L1LogisticCvFit out;
  const size_t n = rows.size();
  const size_t k_folds = static_cast<size_t>(options.folds);
  if (options.Cs.size() > 1) {
    if (options.folds < 2 || n < k_folds)
      throw UserError("logistic fit: choosing C by " + std::to_string(options.folds) +
                      "-fold cross-validation needs at least that many rows, got " +
                      std::to_string(n));
    out.mean_losses.assign(options.Cs.size(), 0.0);
    for (size_t fold = 0; fold < k_folds; ++fold) {
      std::vector<LogisticRow> train, test;
      for (size_t r = 0; r < n; ++r)
        ((n - 1 - r) % k_folds == fold ? test : train).push_back(rows[r]);
      std::vector<double> warm;  // each C starts from the previous one's solution
      for (size_t c = 0; c < options.Cs.size(); ++c) {
        const L1LogisticFit fit =
            fit_l1_logistic(train, num_features, options.Cs[c], options.fit, warm);
        out.converged = out.converged && fit.converged;
        out.mean_losses[c] += soft_log_loss(test, fit.coef) / static_cast<double>(k_folds);
        warm = fit.coef;
      }
    }
  }
  const size_t best =
      out.mean_losses.empty()
          ? 0
          : static_cast<size_t>(std::min_element(out.mean_losses.begin(), out.mean_losses.end()) -
                                out.mean_losses.begin());
  out.C = options.Cs[best];
  const L1LogisticFit fit = fit_l1_logistic(rows, num_features, out.C, options.fit);
  out.converged = out.converged && fit.converged;
  out.coef = fit.coef;
  return out;
}

}  // namespace flywheel
