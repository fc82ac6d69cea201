// Exact values for the math checker: finite sums of terms c · π^k · √r with c rational, k an
// integer and r a square-free positive integer. That basis is linearly independent over the
// rationals, so two values in canonical form are equal exactly when their term lists are —
// 2√3 = √12, √3/3 = 1/√3 and 3π/6 = π/2 are decided without rounding. What leaves the basis
// (logarithms, trigonometric functions, nested or cubic roots that are not perfect powers,
// int64 overflow, division by a sum that no single conjugate rationalizes) becomes a long
// double approximation, compared with a relative tolerance of 1e-9 and reported as such.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "verifiers/rational.h"

namespace flywheel::verifiers {

struct Term {
  Rational coefficient;
  int pi_power = 0;
  int64_t radicand = 1;  // square-free, >= 1
};

class Value {
 public:
  Value() = default;  // 0
  Value(Rational r);  // NOLINT: rationals are values
  static Value pi();
  static Value approx(long double x);  // infinities allowed

  bool exact() const { return exact_; }
  long double numeric() const;
  bool is_rational() const;
  Rational as_rational() const;  // requires is_rational()

  friend Value operator+(const Value& a, const Value& b);
  friend Value operator-(const Value& a, const Value& b);
  friend Value operator*(const Value& a, const Value& b);
  friend Value operator/(const Value& a, const Value& b);  // domain_error on an exact 0
  Value operator-() const;
  Value pow(const Value& exponent) const;
  Value root(int64_t n) const;  // the principal n-th root (n >= 2)
  Value factorial() const;      // of a non-negative integer up to 20

  // Exact values by their terms; otherwise |a - b| <= 1e-9 · max(1, |a|, |b|).
  bool equals(const Value& other) const;
  std::string to_string() const;

 private:
  void add_term(const Term& t);  // keeps terms_ canonical
  static Value from_terms(const std::vector<Term>& terms);
  Value inverse() const;

  std::vector<Term> terms_;  // sorted by (pi_power, radicand); no zero coefficients
  bool exact_ = true;
  long double approx_ = 0;
};

}  // namespace flywheel::verifiers
