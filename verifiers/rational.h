// Exact rational numbers for the verifiers: int64 numerator and denominator kept reduced with a
// positive denominator. Every operation that would leave int64 throws RationalOverflow, which the
// callers turn into a numeric (long double) fallback instead of a wrong exact answer.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>

namespace flywheel::verifiers {

class RationalOverflow : public std::overflow_error {
 public:
  RationalOverflow() : std::overflow_error("rational out of int64 range") {}
};

class Rational {
 public:
  Rational() = default;
  Rational(int64_t n) : num_(n) {}  // NOLINT: integers are rationals
  Rational(int64_t n, int64_t d);   // throws std::domain_error when d == 0

  int64_t num() const { return num_; }
  int64_t den() const { return den_; }
  bool is_zero() const { return num_ == 0; }
  bool is_integer() const { return den_ == 1; }
  long double value() const { return static_cast<long double>(num_) / den_; }

  friend Rational operator+(const Rational& a, const Rational& b);
  friend Rational operator-(const Rational& a, const Rational& b);
  friend Rational operator*(const Rational& a, const Rational& b);
  friend Rational operator/(const Rational& a, const Rational& b);  // domain_error on 0
  Rational operator-() const;
  friend bool operator==(const Rational& a, const Rational& b) = default;
  friend bool operator<(const Rational& a, const Rational& b);

 private:
  int64_t num_ = 0;
  int64_t den_ = 1;
};

// "42", "-3.25", ".5", "1e3" is not accepted: digits with at most one point, an optional
// leading sign. Empty when the text is not such a decimal or does not fit.
std::optional<Rational> parse_decimal(std::string_view text);

// floor(sqrt(n)) for n >= 0, exact.
int64_t isqrt(int64_t n);

}  // namespace flywheel::verifiers
