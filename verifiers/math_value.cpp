#include "verifiers/math_value.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace flywheel::verifiers {
namespace {

// More terms than this and a value is approximated: bounds the work of (a + b + ...)^n.
constexpr size_t kMaxTerms = 32;
// Integer powers computed exactly up to this exponent.
constexpr int64_t kMaxExactPower = 64;
// Square parts are extracted by trial division up to the cube root of this bound.
constexpr int64_t kMaxFactored = 1'000'000'000'000;

long double term_numeric(const Term& t) {
  return t.coefficient.value() * std::pow(std::numbers::pi_v<long double>, t.pi_power) *
         std::sqrt(static_cast<long double>(t.radicand));
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) throw RationalOverflow();
  return out;
}

// n = s² · m with m square-free; n in [1, kMaxFactored]. Trial division by every p with
// p³ <= n leaves a cofactor whose prime factors are all > n^(1/3): at most two of them, so it
// is 1, p, p·q (square-free) or p² (a perfect square).
std::pair<int64_t, int64_t> square_part(int64_t n) {
  int64_t s = 1, m = 1;
  for (int64_t p = 2; p * p * p <= n; ++p) {
    while (n % (p * p) == 0) {
      n /= p * p;
      s *= p;
    }
    if (n % p == 0) {
      n /= p;
      m *= p;
    }
  }
  const int64_t r = isqrt(n);
  if (r * r == n) return {s * r, m};
  return {s, checked_mul(m, n)};
}

// The integer k with k^n = x (x >= 0), if there is one.
std::optional<int64_t> exact_root(int64_t x, int64_t n) {
  const auto guess = static_cast<int64_t>(
      std::llround(std::pow(static_cast<long double>(x), 1.0L / static_cast<long double>(n))));
  for (int64_t k = std::max<int64_t>(0, guess - 1); k <= guess + 1; ++k) {
    __int128 p = 1;
    for (int64_t i = 0; i < n && p <= x; ++i)
      p *= k;
    if (p == x) return k;
  }
  return std::nullopt;
}

}  // namespace

Value::Value(Rational r) {
  if (!r.is_zero()) terms_.push_back({r, 0, 1});
}

Value Value::pi() {
  Value v;
  v.terms_.push_back({Rational(1), 1, 1});
  return v;
}

Value Value::approx(long double x) {
  Value v;
  v.exact_ = false;
  v.approx_ = x;
  return v;
}

long double Value::numeric() const {
  if (!exact_) return approx_;
  long double sum = 0;
  for (const auto& t : terms_)
    sum += term_numeric(t);
  return sum;
}

bool Value::is_rational() const {
  return exact_ && (terms_.empty() ||
                    (terms_.size() == 1 && terms_[0].pi_power == 0 && terms_[0].radicand == 1));
}

Rational Value::as_rational() const {
  return terms_.empty() ? Rational(0) : terms_[0].coefficient;
}

void Value::add_term(const Term& t) {
  if (t.coefficient.is_zero()) return;
  auto it = std::lower_bound(terms_.begin(), terms_.end(), t, [](const Term& a, const Term& b) {
    return std::pair(a.pi_power, a.radicand) < std::pair(b.pi_power, b.radicand);
  });
  if (it != terms_.end() && it->pi_power == t.pi_power && it->radicand == t.radicand) {
    it->coefficient = it->coefficient + t.coefficient;
    if (it->coefficient.is_zero()) terms_.erase(it);
  } else {
    terms_.insert(it, t);
  }
}

Value Value::from_terms(const std::vector<Term>& terms) {
  Value v;
  for (const auto& t : terms)
    v.add_term(t);
  if (v.terms_.size() > kMaxTerms) return approx(v.numeric());
  return v;
}

Value operator+(const Value& a, const Value& b) {
  if (!a.exact_ || !b.exact_) return Value::approx(a.numeric() + b.numeric());
  try {
    Value out = a;
    for (const auto& t : b.terms_)
      out.add_term(t);
    if (out.terms_.size() > kMaxTerms) return Value::approx(out.numeric());
    return out;
  } catch (const RationalOverflow&) {
    return Value::approx(a.numeric() + b.numeric());
  }
}

Value Value::operator-() const {
  if (!exact_) return approx(-approx_);
  Value out = *this;
  for (auto& t : out.terms_)
    t.coefficient = -t.coefficient;
  return out;
}

Value operator-(const Value& a, const Value& b) {
  return a + (-b);
}

Value operator*(const Value& a, const Value& b) {
  if (!a.exact_ || !b.exact_ || a.terms_.size() * b.terms_.size() > kMaxTerms * kMaxTerms)
    return Value::approx(a.numeric() * b.numeric());
  try {
    std::vector<Term> terms;
    for (const auto& x : a.terms_) {
      for (const auto& y : b.terms_) {
        // √r1 · √r2 = g · √((r1/g)(r2/g)) with g = gcd: both square-free, so the rest is too.
        const int64_t g = std::gcd(x.radicand, y.radicand);
        terms.push_back({x.coefficient * y.coefficient * Rational(g), x.pi_power + y.pi_power,
                         checked_mul(x.radicand / g, y.radicand / g)});
      }
    }
    return Value::from_terms(terms);
  } catch (const RationalOverflow&) {
    return Value::approx(a.numeric() * b.numeric());
  }
}

Value Value::inverse() const {
  if (!exact_) return approx(1.0L / approx_);
  if (terms_.empty()) throw std::domain_error("division by zero");
  try {
    if (terms_.size() == 1) {
      // 1 / (c π^k √r) = √r / (c r) · π^-k
      const Term& t = terms_[0];
      return from_terms(
          {{Rational(1) / (t.coefficient * Rational(t.radicand)), -t.pi_power, t.radicand}});
    }
    if (terms_.size() == 2 && terms_[0].pi_power == terms_[1].pi_power && terms_[0].radicand == 1) {
      // 1 / (a + b√r) = (a - b√r) / (a² - b² r), with a common π^k factored out.
      const Term& a = terms_[0];
      const Term& b = terms_[1];
      const Rational norm =
          a.coefficient * a.coefficient - b.coefficient * b.coefficient * Rational(b.radicand);
      const int k = a.pi_power;
      return from_terms({{a.coefficient / norm, -k, 1}, {-b.coefficient / norm, -k, b.radicand}});
    }
  } catch (const RationalOverflow&) {
  }
  return approx(1.0L / numeric());
}

Value operator/(const Value& a, const Value& b) {
  return a * b.inverse();
}

Value Value::root(int64_t n) const {
  if (exact_ && terms_.empty()) return *this;
  if (is_rational()) {
    const Rational r = as_rational();
    try {
      if (n == 2 && r.num() > 0) {
        // √(p/q) = √(p q) / q, with the square part of p q taken out.
        const int64_t pq = checked_mul(r.num(), r.den());
        if (pq <= kMaxFactored) {
          const auto [s, m] = square_part(pq);
          return from_terms({{Rational(s, r.den()), 0, m}});
        }
      } else if (n > 2 && (r.num() > 0 || n % 2 == 1)) {
        const auto top = exact_root(r.num() < 0 ? -r.num() : r.num(), n);
        const auto bottom = exact_root(r.den(), n);
        if (top && bottom) return Value(Rational(r.num() < 0 ? -*top : *top, *bottom));
      }
    } catch (const RationalOverflow&) {
    }
  } else if (exact_ && n == 2 && terms_.size() == 1 && terms_[0].radicand == 1 &&
             terms_[0].pi_power % 2 == 0 && terms_[0].coefficient.num() > 0) {
    // √(c π^2j) = √c · π^j
    Value out = Value(terms_[0].coefficient).root(2);
    for (int j = 0; j < std::abs(terms_[0].pi_power / 2); ++j)
      out = terms_[0].pi_power > 0 ? out * pi() : out / pi();
    return out;
  }
  const long double x = numeric();
  if (x < 0 && n % 2 == 1) return approx(-std::pow(-x, 1.0L / static_cast<long double>(n)));
  return approx(std::pow(x, 1.0L / static_cast<long double>(n)));  // NaN for even roots of x < 0
}

Value Value::pow(const Value& exponent) const {
  if (exact_ && exponent.is_rational()) {
    const Rational e = exponent.as_rational();
    const int64_t p = e.num();
    if (std::abs(p) <= kMaxExactPower && e.den() <= kMaxExactPower) {
      Value base = p < 0 ? inverse() : *this;
      Value out(Rational(1));
      for (int64_t i = 0; i < std::abs(p); ++i)
        out = out * base;
      return e.den() == 1 ? out : out.root(e.den());
    }
  }
  return approx(std::pow(numeric(), exponent.numeric()));
}

Value Value::factorial() const {
  if (is_rational()) {
    const Rational r = as_rational();
    if (r.is_integer() && r.num() >= 0 && r.num() <= 20) {
      int64_t f = 1;
      for (int64_t i = 2; i <= r.num(); ++i)
        f *= i;
      return Value(Rational(f));
    }
  }
  return approx(std::tgamma(numeric() + 1));
}

bool Value::equals(const Value& other) const {
  if (exact_ && other.exact_) {
    if (terms_.size() != other.terms_.size()) return false;
    for (size_t i = 0; i < terms_.size(); ++i) {
      const Term& a = terms_[i];
      const Term& b = other.terms_[i];
      if (a.pi_power != b.pi_power || a.radicand != b.radicand || !(a.coefficient == b.coefficient))
        return false;
    }
    return true;
  }
  const long double a = numeric(), b = other.numeric();
  if (std::isnan(a) || std::isnan(b)) return false;
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= 1e-9L * std::max({1.0L, std::fabs(a), std::fabs(b)});
}

std::string Value::to_string() const {
  std::ostringstream out;
  if (!exact_) {
    out.precision(17);
    out << "~" << static_cast<double>(approx_);
    return out.str();
  }
  if (terms_.empty()) return "0";
  for (size_t i = 0; i < terms_.size(); ++i) {
    const Term& t = terms_[i];
    if (i > 0) out << " + ";
    out << t.coefficient.num();
    if (t.coefficient.den() != 1) out << "/" << t.coefficient.den();
    if (t.pi_power != 0) out << "*pi^" << t.pi_power;
    if (t.radicand != 1) out << "*sqrt(" << t.radicand << ")";
  }
  return out.str();
}

}  // namespace flywheel::verifiers
