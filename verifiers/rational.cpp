#include "verifiers/rational.h"

#include <cmath>
#include <numeric>

namespace flywheel::verifiers {
namespace {

int64_t narrow(__int128 v) {
  if (v > INT64_MAX || v < -static_cast<__int128>(INT64_MAX)) throw RationalOverflow();
  return static_cast<int64_t>(v);
}

// n/d reduced, from 128-bit intermediates (products of two int64 fit).
Rational reduced(__int128 n, __int128 d) {
  if (d < 0) n = -n, d = -d;
  __int128 a = n < 0 ? -n : n, b = d;
  while (b != 0) {
    const __int128 t = a % b;
    a = b;
    b = t;
  }
  if (a > 1) n /= a, d /= a;
  return Rational(narrow(n), narrow(d));
}

}  // namespace

Rational::Rational(int64_t n, int64_t d) {
  if (d == 0) throw std::domain_error("division by zero");
  if (n == INT64_MIN || d == INT64_MIN) throw RationalOverflow();
  if (d < 0) n = -n, d = -d;
  const int64_t g = std::gcd(n, d);
  num_ = n / g;
  den_ = d / g;
}

Rational operator+(const Rational& a, const Rational& b) {
  return reduced(static_cast<__int128>(a.num_) * b.den_ + static_cast<__int128>(b.num_) * a.den_,
                 static_cast<__int128>(a.den_) * b.den_);
}

Rational operator-(const Rational& a, const Rational& b) {
  return a + (-b);
}

Rational operator*(const Rational& a, const Rational& b) {
  return reduced(static_cast<__int128>(a.num_) * b.num_, static_cast<__int128>(a.den_) * b.den_);
}

Rational operator/(const Rational& a, const Rational& b) {
  if (b.num_ == 0) throw std::domain_error("division by zero");
  return reduced(static_cast<__int128>(a.num_) * b.den_, static_cast<__int128>(a.den_) * b.num_);
}

Rational Rational::operator-() const {
  Rational r;
  r.num_ = -num_;
  r.den_ = den_;
  return r;
}

bool operator<(const Rational& a, const Rational& b) {
  return static_cast<__int128>(a.num_) * b.den_ < static_cast<__int128>(b.num_) * a.den_;
}

std::optional<Rational> parse_decimal(std::string_view text) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  __int128 num = 0, den = 1;
  bool digits = false, point = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    digits = true;
    num = num * 10 + (c - '0');
    if (point) den *= 10;
    // 10^19 > INT64_MAX: past that nothing fits once reduced either (except trailing zeros
    // after the point, which callers do not write at such lengths).
    if (num > static_cast<__int128>(INT64_MAX) * 10 || den > static_cast<__int128>(INT64_MAX))
      return std::nullopt;
  }
  if (!digits) return std::nullopt;
  try {
    return reduced(negative ? -num : num, den);
  } catch (const RationalOverflow&) {
    return std::nullopt;
  }
}

int64_t isqrt(int64_t n) {
  if (n < 2) return n;
  auto r = static_cast<int64_t>(std::sqrt(static_cast<long double>(n)));
  while (static_cast<__int128>(r) * r > n)
    --r;
  while (static_cast<__int128>(r + 1) * (r + 1) <= n)
    ++r;
  return r;
}

}  // namespace flywheel::verifiers
