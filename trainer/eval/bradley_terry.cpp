#include "trainer/eval/bradley_terry.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace flywheel {
namespace {

// log(1 + e^z) without overflow.
double softplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

double sigmoid(double z) {
  if (z >= 0) return 1 / (1 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1 + e);
}

// The penalized negative log-likelihood over one parameter vector [P + K] (β then θ).
class Objective {
 public:
  Objective(int players, const std::vector<PairCount>& pairs, const FeatureRows& rows, double alpha,
            double l2)
      : p_(players), pairs_(pairs), rows_(rows), alpha_(alpha), l2_(l2) {}

  int size() const { return p_ + rows_.features; }

  double row_logit(const std::vector<double>& w, int64_t r) const {
    const int k = rows_.features;
    double z = alpha_ * (w[rows_.a[r]] - w[rows_.b[r]]);
    for (int f = 0; f < k; ++f)
      z += w[p_ + f] * rows_.x[r * k + f];
    return z;
  }

  double value(const std::vector<double>& w) const {
    double v = 0;
    for (const PairCount& c : pairs_) {
      const double z = alpha_ * (w[c.i] - w[c.j]);
      v += c.games * softplus(z) - c.score * z;  // = s softplus(-z) + (n - s) softplus(z)
    }
    for (int64_t r = 0; r < rows_.rows; ++r) {
      const double wt = rows_.weight[r];
      if (wt == 0) continue;
      const double z = row_logit(w, r);
      v += wt * (softplus(z) - rows_.outcome[r] * z);
    }
    double sq = 0;
    for (double x : w)
      sq += x * x;
    return v + 0.5 * l2_ * sq;
  }

  // Gradient g [n] and Hessian h [n, n] (row-major) at w.
  void derivatives(const std::vector<double>& w, std::vector<double>* g,
                   std::vector<double>* h) const {
    const int n = size();
    const int k = rows_.features;
    g->assign(n, 0.0);
    h->assign(static_cast<size_t>(n) * n, 0.0);
    auto& G = *g;
    auto H = [&](int r, int c) -> double& { return (*h)[static_cast<size_t>(r) * n + c]; };
    const double a2 = alpha_ * alpha_;
    for (const PairCount& c : pairs_) {
      const double p = sigmoid(alpha_ * (w[c.i] - w[c.j]));
      const double d = alpha_ * (c.games * p - c.score);
      const double curv = a2 * c.games * p * (1 - p);
      G[c.i] += d;
      G[c.j] -= d;
      H(c.i, c.i) += curv;
      H(c.j, c.j) += curv;
      H(c.i, c.j) -= curv;
      H(c.j, c.i) -= curv;
    }
    for (int64_t r = 0; r < rows_.rows; ++r) {
      const double wt = rows_.weight[r];
      if (wt == 0) continue;
      const int a = rows_.a[r], b = rows_.b[r];
      const double* x = rows_.x + r * k;
      const double p = sigmoid(row_logit(w, r));
      const double e = wt * (p - rows_.outcome[r]);
      const double curv = wt * p * (1 - p);
      G[a] += alpha_ * e;
      G[b] -= alpha_ * e;
      H(a, a) += a2 * curv;
      H(b, b) += a2 * curv;
      H(a, b) -= a2 * curv;
      H(b, a) -= a2 * curv;
      for (int f = 0; f < k; ++f) {
        G[p_ + f] += e * x[f];
        H(a, p_ + f) += alpha_ * curv * x[f];
        H(b, p_ + f) -= alpha_ * curv * x[f];
        for (int f2 = 0; f2 <= f; ++f2)
          H(p_ + f, p_ + f2) += curv * x[f] * x[f2];
      }
    }
    // Mirror the blocks filled on one side only.
    for (int f = 0; f < k; ++f) {
      for (int i = 0; i < p_; ++i)
        H(p_ + f, i) = H(i, p_ + f);
      for (int f2 = 0; f2 < f; ++f2)
        H(p_ + f2, p_ + f) = H(p_ + f, p_ + f2);
    }
    for (int i = 0; i < n; ++i) {
      G[i] += l2_ * w[i];
      H(i, i) += l2_;
    }
  }

 private:
  int p_;
  const std::vector<PairCount>& pairs_;
  const FeatureRows& rows_;
  double alpha_;
  double l2_;
};

// Solves A x = b for symmetric positive definite A [n, n] (overwritten) by Cholesky. A pivot
// that is not positive (a direction the data leave flat, e.g. ratings already diverging) gets
// a small ridge, so the step along it stays finite.
std::vector<double> cholesky_solve(std::vector<double> a, std::vector<double> b, int n) {
  double scale = 0;
  for (int i = 0; i < n; ++i)
    scale = std::max(scale, a[static_cast<size_t>(i) * n + i]);
  const double ridge = 1e-12 * std::max(scale, 1e-300);
  for (int j = 0; j < n; ++j) {
    double* rj = &a[static_cast<size_t>(j) * n];
    double d = rj[j];
    for (int k = 0; k < j; ++k)
      d -= rj[k] * rj[k];
    d = std::sqrt(std::max(d, ridge));
    rj[j] = d;
    for (int i = j + 1; i < n; ++i) {
      double* ri = &a[static_cast<size_t>(i) * n];
      double s = ri[j];
      for (int k = 0; k < j; ++k)
        s -= ri[k] * rj[k];
      ri[j] = s / d;
    }
  }
  for (int i = 0; i < n; ++i) {  // L y = b
    double s = b[i];
    for (int k = 0; k < i; ++k)
      s -= a[static_cast<size_t>(i) * n + k] * b[k];
    b[i] = s / a[static_cast<size_t>(i) * n + i];
  }
  for (int i = n - 1; i >= 0; --i) {  // Lᵀ x = y
    double s = b[i];
    for (int k = i + 1; k < n; ++k)
      s -= a[static_cast<size_t>(k) * n + i] * b[k];
    b[i] = s / a[static_cast<size_t>(i) * n + i];
  }
  return b;
}

}  // namespace

BtSolution solve_bradley_terry(int players, const std::vector<PairCount>& pairs,
                               const FeatureRows& rows, double alpha,
                               const BtSolverOptions& options) {
  BtSolution out;
  out.present.assign(players, false);
  for (const PairCount& c : pairs) {
    if (c.games > 0) out.present[c.i] = out.present[c.j] = true;
  }
  for (int64_t r = 0; r < rows.rows; ++r) {
    if (rows.weight[r] > 0) out.present[rows.a[r]] = out.present[rows.b[r]] = true;
  }
  const Objective objective(players, pairs, rows, alpha, options.l2);
  const int n = objective.size();
  std::vector<double> w(n, 0.0), g, h;
  double f = objective.value(w);
  for (out.iterations = 0; out.iterations < options.max_iterations; ++out.iterations) {
    objective.derivatives(w, &g, &h);
    // The likelihood is flat along "shift every present player's β alike"; adding c·u·uᵀ (u =
    // the present players' indicator) makes the system definite without changing the step's
    // other components, and since g sums to zero over u the step keeps Σ β = 0.
    double c = 1;
    for (int i = 0; i < players; ++i)
      c = std::max(c, h[static_cast<size_t>(i) * n + i]);
    for (int i = 0; i < players; ++i) {
      for (int j = 0; j < players; ++j) {
        if (out.present[i] && out.present[j]) h[static_cast<size_t>(i) * n + j] += c / players;
      }
      if (!out.present[i]) h[static_cast<size_t>(i) * n + i] = 1;  // absent: g_i = 0, stays 0
    }
    std::vector<double> step = cholesky_solve(h, g, n);
    double largest = 0, slope = 0;
    for (int i = 0; i < n; ++i) {
      step[i] = -step[i];
      largest = std::max(largest, std::abs(step[i]));
      slope += g[i] * step[i];
    }
    // Backtrack until the objective drops enough (Armijo). Steps too small to be judged
    // against rounding in f are taken whole: there Newton converges quadratically anyway.
    double t = 1;
    std::vector<double> trial(n);
    for (int halvings = 0;; ++halvings) {
      for (int i = 0; i < n; ++i)
        trial[i] = w[i] + t * step[i];
      const double ft = objective.value(trial);
      if (ft <= f + 1e-4 * t * slope || t * largest < 1e-6 || halvings == 60) {
        f = ft;
        break;
      }
      t *= 0.5;
    }
    w.swap(trial);
    if (t * largest < options.tolerance) {
      out.converged = true;
      ++out.iterations;
      break;
    }
  }
  out.beta.assign(w.begin(), w.begin() + players);
  out.theta.assign(w.begin() + players, w.end());
  return out;
}

ComparisonGraph analyze_comparisons(int players, const std::vector<PairCount>& pairs,
                                    const std::vector<bool>& present) {
  // beat[i]: the players i scored against (won or tied); lost[i]: those who scored against i.
  std::vector<std::vector<int32_t>> beat(players), lost(players);
  for (const PairCount& c : pairs) {
    if (c.games <= 0) continue;
    if (c.score > 0) {
      beat[c.i].push_back(c.j);
      lost[c.j].push_back(c.i);
    }
    if (c.games - c.score > 0) {
      beat[c.j].push_back(c.i);
      lost[c.i].push_back(c.j);
    }
  }
  // Kosaraju: finishing order on `beat`, then components on `lost` in reverse finishing order.
  std::vector<int32_t> order;
  std::vector<bool> seen(players, false);
  for (int s = 0; s < players; ++s) {
    if (!present[s] || seen[s]) continue;
    std::vector<std::pair<int32_t, size_t>> stack = {{s, 0}};
    seen[s] = true;
    while (!stack.empty()) {
      auto& [v, next] = stack.back();
      if (next < beat[v].size()) {
        const int32_t u = beat[v][next++];
        if (!seen[u]) {
          seen[u] = true;
          stack.push_back({u, 0});
        }
      } else {
        order.push_back(v);
        stack.pop_back();
      }
    }
  }
  std::vector<int32_t> group(players, -1);
  int groups = 0;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (group[*it] >= 0) continue;
    std::vector<int32_t> stack = {*it};
    group[*it] = groups;
    while (!stack.empty()) {
      const int32_t v = stack.back();
      stack.pop_back();
      for (int32_t u : lost[v]) {
        if (group[u] < 0) {
          group[u] = groups;
          stack.push_back(u);
        }
      }
    }
    ++groups;
  }
  ComparisonGraph out;
  out.strongly_connected = groups <= 1;
  // Undirected components: union-find over the groups' members by who met whom.
  std::vector<int32_t> root(players);
  std::iota(root.begin(), root.end(), 0);
  auto find = [&](int32_t v) {
    while (root[v] != v)
      v = root[v] = root[root[v]];
    return v;
  };
  std::vector<bool> has_in(groups, false), has_out(groups, false);
  for (int v = 0; v < players; ++v) {
    for (int32_t u : beat[v]) {
      root[find(v)] = find(u);
      if (group[v] != group[u]) has_out[group[v]] = has_in[group[u]] = true;
    }
  }
  std::vector<int32_t> component_of(players, -1);
  std::vector<std::vector<int32_t>> members(groups);
  for (int v = 0; v < players; ++v) {
    if (!present[v]) continue;
    members[group[v]].push_back(v);
    int32_t& c = component_of[find(v)];
    if (c < 0) {
      c = static_cast<int32_t>(out.components.size());
      out.components.emplace_back();
    }
    out.components[c].push_back(v);
  }
  if (!out.strongly_connected) {
    for (int gi = 0; gi < groups; ++gi) {
      if (!has_in[gi]) out.never_lost.push_back(members[gi]);
      if (!has_out[gi]) out.never_won.push_back(members[gi]);
    }
  }
  return out;
}

}  // namespace flywheel
