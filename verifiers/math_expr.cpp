#include "verifiers/math_expr.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

#include "verifiers/deadline.h"
#include "verifiers/math_value.h"
#include "verifiers/text.h"

namespace flywheel::verifiers {
namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 4096;
constexpr int kPoints = 3;

struct ParseFailure {};

enum class NodeKind {
  kNumber,
  kPi,
  kInfinity,
  kVariable,
  kNeg,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kPow,
  kRoot,
  kFactorial,
  kFunction,
  kAbs,
  kFloor,
  kCeil,
  kBinomial
};

struct Node {
  explicit Node(NodeKind k, int first = -1, int second = -1) : kind(k), a(first), b(second) {}
  NodeKind kind;
  Rational number;     // kNumber
  std::string name;    // kVariable, kFunction
  int a, b;            // operands (node indices)
  int64_t degree = 2;  // kRoot
};

enum class AnswerKind { kExpression, kTuple, kSet, kList, kMatrix, kEquation, kUnion, kText };

struct Answer {
  explicit Answer(AnswerKind k = AnswerKind::kExpression, int e = -1, int r = -1)
      : kind(k), expr(e), rhs(r) {}
  AnswerKind kind;
  int expr, rhs;  // kExpression: expr; kEquation: expr = rhs
  std::vector<Answer> items;
  char open = 0, close = 0;  // kTuple
  size_t columns = 0;        // kMatrix: items row-major
  std::string text;          // kText
};

constexpr std::array<std::string_view, 16> kFunctions = {
    "sin",    "cos",  "tan",  "cot",  "sec", "csc", "arcsin", "arccos",
    "arctan", "sinh", "cosh", "tanh", "ln",  "log", "exp",    "det"};

constexpr std::array<std::string_view, 24> kGreek = {
    "alpha", "beta",     "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta",
    "theta", "vartheta", "iota",  "kappa", "lambda",  "mu",         "nu",   "xi",
    "rho",   "sigma",    "tau",   "phi",   "varphi",  "chi",        "psi",  "omega"};

template <size_t N>
bool one_of(std::string_view word, const std::array<std::string_view, N>& list) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

// Recursive descent over one expression; throws ParseFailure on anything it does not know.
class ExpressionParser {
 public:
  ExpressionParser(std::string_view text, std::vector<Node>* nodes) : s_(text), nodes_(nodes) {}

  int parse_all() {
    const int root = sum();
    if (pos_ != s_.size()) throw ParseFailure();
    return root;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(int* d) : depth(d) {
      if (++*depth > kMaxDepth) throw ParseFailure();
    }
    ~DepthGuard() { --*depth; }
    int* depth;
  };

  int add(Node n) {
    if (nodes_->size() >= kMaxNodes) throw ParseFailure();
    nodes_->push_back(std::move(n));
    return static_cast<int>(nodes_->size() - 1);
  }
  int binary(NodeKind kind, int a, int b) { return add(Node(kind, a, b)); }
  int unary_node(NodeKind kind, int a) { return add(Node(kind, a)); }
  int named(NodeKind kind, std::string name, int a = -1, int b = -1) {
    Node n(kind, a, b);
    n.name = std::move(name);
    return add(std::move(n));
  }

  void skip_spaces() {
    while (pos_ < s_.size() && s_[pos_] == ' ')
      ++pos_;
  }
  bool at(char c) {
    skip_spaces();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  bool eat(char c) {
    if (!at(c)) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!eat(c)) throw ParseFailure();
  }
  // The command name at pos_ ("frac" for "\frac"), without consuming it; empty if none.
  std::string_view peek_command() {
    skip_spaces();
    if (pos_ >= s_.size() || s_[pos_] != '\\') return {};
    size_t j = pos_ + 1;
    while (j < s_.size() && is_ascii_alpha(s_[j]))
      ++j;
    return s_.substr(pos_ + 1, j - pos_ - 1);
  }
  bool eat_command(std::string_view name) {
    if (peek_command() != name) return false;
    pos_ += name.size() + 1;
    return true;
  }

  int sum() {
    DepthGuard guard(&depth_);
    int left = product_tail(unary());
    while (true) {
      if (eat('+')) {
        left = binary(NodeKind::kAdd, left, product_tail(unary()));
      } else if (eat('-')) {
        left = binary(NodeKind::kSub, left, product_tail(unary()));
      } else {
        return left;
      }
    }
  }

  // Continues a product whose first factor is `left`.
  int product_tail(int left) {
    while (true) {
      if (eat('*') || eat_command("cdot") || eat_command("times") || eat_command("ast")) {
        left = binary(NodeKind::kMul, left, unary());
      } else if (eat('/') || eat_command("div")) {
        left = binary(NodeKind::kDiv, left, unary());
      } else if (starts_factor()) {
        left = binary(NodeKind::kMul, left, power());
      } else {
        return left;
      }
    }
  }

  int unary() {
    DepthGuard guard(&depth_);
    if (eat('-')) return unary_node(NodeKind::kNeg, product_tail(unary()));
    if (eat('+')) return unary();
    return power();
  }

  bool starts_factor() {
    skip_spaces();
    if (pos_ >= s_.size()) return false;
    const char c = s_[pos_];
    if (is_ascii_digit(c) || is_ascii_alpha(c) || c == '(' || c == '{') return true;
    if (c == '.' && pos_ + 1 < s_.size() && is_ascii_digit(s_[pos_ + 1])) return true;
    const std::string_view cmd = peek_command();
    return cmd == "frac" || cmd == "sqrt" || cmd == "pi" || cmd == "infty" || cmd == "binom" ||
           cmd == "lfloor" || cmd == "lceil" || one_of(cmd, kFunctions) || one_of(cmd, kGreek);
  }

  int power() {
    DepthGuard guard(&depth_);
    int base = postfix();
    if (eat('^')) return binary(NodeKind::kPow, base, exponent());
    return base;
  }

  // A superscript: a group, or one atom ("x^10" is read as x^{10}, as writers mean it).
  int exponent() {
    DepthGuard guard(&depth_);
    if (eat('-')) return unary_node(NodeKind::kNeg, exponent());
    if (at('{')) return group();
    return postfix();
  }

  int postfix() {
    int p = primary();
    while (eat('!'))
      p = unary_node(NodeKind::kFactorial, p);
    return p;
  }

  int group() {
    expect('{');
    const int inner = sum();
    expect('}');
    return inner;
  }

  // A subscript's text: "_1", "_{12}", "_x" -> "1", "12", "x".
  std::string subscript() {
    if (!eat('_')) return {};
    if (at('{')) {
      const size_t start = ++pos_;
      while (pos_ < s_.size() && (is_ascii_alpha(s_[pos_]) || is_ascii_digit(s_[pos_])))
        ++pos_;
      std::string text(s_.substr(start, pos_ - start));
      expect('}');
      if (text.empty()) throw ParseFailure();
      return text;
    }
    if (pos_ < s_.size() && (is_ascii_alpha(s_[pos_]) || is_ascii_digit(s_[pos_])))
      return std::string(1, s_[pos_++]);
    throw ParseFailure();
  }

  int number() {
    const size_t start = pos_;
    while (pos_ < s_.size() && is_ascii_digit(s_[pos_]))
      ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '.' && pos_ + 1 < s_.size() &&
        is_ascii_digit(s_[pos_ + 1])) {
      ++pos_;
      while (pos_ < s_.size() && is_ascii_digit(s_[pos_]))
        ++pos_;
    }
    const std::string_view digits = s_.substr(start, pos_ - start);
    if (at('_')) {  // 52_8: a numeral in another base, equal only to itself
      return named(NodeKind::kVariable, "#" + std::string(digits) + "_" + subscript());
    }
    const auto value = parse_decimal(digits);
    if (!value) throw ParseFailure();
    Node leaf(NodeKind::kNumber);
    leaf.number = *value;
    const int n = add(std::move(leaf));
    // A mixed number: an integer followed by a fraction of integers, "2\frac{1}{2}" = 5/2.
    if (value->is_integer() && peek_command() == "frac") {
      const size_t save = pos_;
      const int f = primary();
      const Node& frac = (*nodes_)[static_cast<size_t>(f)];
      const bool plain = frac.kind == NodeKind::kDiv &&
                         (*nodes_)[static_cast<size_t>(frac.a)].kind == NodeKind::kNumber &&
                         (*nodes_)[static_cast<size_t>(frac.b)].kind == NodeKind::kNumber;
      if (plain) return binary(value->num() < 0 ? NodeKind::kSub : NodeKind::kAdd, n, f);
      pos_ = save;
    }
    return n;
  }

  int function(std::string_view name) {
    std::string full(name);
    int base = -1;
    if (name == "log" && at('_')) {
      ++pos_;
      base = at('{') ? group() : postfix();
    }
    int outer_power = -1;
    if (eat('^')) outer_power = exponent();  // \sin^2 x
    int arg;
    if (at('(')) {
      ++pos_;
      arg = sum();
      expect(')');
    } else if (at('{')) {
      arg = group();
    } else {
      arg = power();
    }
    int f = named(NodeKind::kFunction, full, arg, base);
    if (outer_power >= 0) f = binary(NodeKind::kPow, f, outer_power);
    return f;
  }

  int primary() {
    DepthGuard guard(&depth_);
    skip_spaces();
    if (pos_ >= s_.size()) throw ParseFailure();
    const char c = s_[pos_];
    if (is_ascii_digit(c) || c == '.') return number();
    if (is_ascii_alpha(c)) {
      std::string name(1, c);
      ++pos_;
      const std::string sub = subscript();
      if (!sub.empty()) name += "_" + sub;
      return named(NodeKind::kVariable, name);
    }
    if (c == '(' || c == '[' || c == '{') {
      ++pos_;
      const int inner = sum();
      expect(c == '(' ? ')' : c == '[' ? ']' : '}');
      return inner;
    }
    if (c == '|') {
      ++pos_;
      const int inner = sum();
      expect('|');
      return unary_node(NodeKind::kAbs, inner);
    }
    const std::string_view cmd = peek_command();
    if (cmd.empty()) throw ParseFailure();
    pos_ += cmd.size() + 1;
    if (cmd == "frac") {
      const int top = group();
      return binary(NodeKind::kDiv, top, group());
    }
    if (cmd == "binom") {
      const int n = group();
      return binary(NodeKind::kBinomial, n, group());
    }
    if (cmd == "sqrt") {
      int64_t degree = 2;
      if (eat('[')) {
        const size_t start = pos_;
        while (pos_ < s_.size() && is_ascii_digit(s_[pos_]))
          ++pos_;
        const auto d = parse_decimal(s_.substr(start, pos_ - start));
        if (!d || !d->is_integer() || d->num() < 2 || d->num() > 64) throw ParseFailure();
        degree = d->num();
        expect(']');
      }
      const int radicand = group();
      Node root(NodeKind::kRoot, radicand);
      root.degree = degree;
      return add(std::move(root));
    }
    if (cmd == "pi") return add(Node(NodeKind::kPi));
    if (cmd == "infty" || cmd == "infinity") return add(Node(NodeKind::kInfinity));
    if (cmd == "lfloor" || cmd == "lceil") {
      const int inner = sum();
      if (!eat_command(cmd == "lfloor" ? "rfloor" : "rceil")) throw ParseFailure();
      return unary_node(cmd == "lfloor" ? NodeKind::kFloor : NodeKind::kCeil, inner);
    }
    if (one_of(cmd, kGreek)) {
      std::string name = "\\" + std::string(cmd);
      const std::string sub = subscript();
      if (!sub.empty()) name += "_" + sub;
      return named(NodeKind::kVariable, name);
    }
    if (one_of(cmd, kFunctions)) return function(cmd);
    throw ParseFailure();
  }

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::vector<Node>* nodes_;
};

using Substitution = std::map<std::string, Value>;

long double apply_function(const std::string& name, long double x, long double base) {
  if (name == "sin") return std::sin(x);
  if (name == "cos") return std::cos(x);
  if (name == "tan") return std::tan(x);
  if (name == "cot") return 1 / std::tan(x);
  if (name == "sec") return 1 / std::cos(x);
  if (name == "csc") return 1 / std::sin(x);
  if (name == "arcsin") return std::asin(x);
  if (name == "arccos") return std::acos(x);
  if (name == "arctan") return std::atan(x);
  if (name == "sinh") return std::sinh(x);
  if (name == "cosh") return std::cosh(x);
  if (name == "tanh") return std::tanh(x);
  if (name == "exp") return std::exp(x);
  if (name == "log" && !std::isnan(base)) return std::log(x) / std::log(base);
  if (name == "ln" || name == "log") return std::log(x);
  return std::nan("");  // det of a scalar expression: not a value
}

Value evaluate(const std::vector<Node>& nodes, int index, const Substitution& vars) {
  const Node& n = nodes[static_cast<size_t>(index)];
  const auto arg = [&](int i) { return evaluate(nodes, i, vars); };
  switch (n.kind) {
    case NodeKind::kNumber:
      return Value(n.number);
    case NodeKind::kPi:
      return Value::pi();
    case NodeKind::kInfinity:
      return Value::approx(INFINITY);
    case NodeKind::kVariable:
      return vars.at(n.name);
    case NodeKind::kNeg:
      return -arg(n.a);
    case NodeKind::kAdd:
      return arg(n.a) + arg(n.b);
    case NodeKind::kSub:
      return arg(n.a) - arg(n.b);
    case NodeKind::kMul:
      return arg(n.a) * arg(n.b);
    case NodeKind::kDiv:
      return arg(n.a) / arg(n.b);
    case NodeKind::kPow:
      return arg(n.a).pow(arg(n.b));
    case NodeKind::kRoot:
      return arg(n.a).root(n.degree);
    case NodeKind::kFactorial:
      return arg(n.a).factorial();
    case NodeKind::kAbs: {
      const Value v = arg(n.a);
      return v.numeric() < 0 ? -v : v;
    }
    case NodeKind::kFloor:
    case NodeKind::kCeil: {
      const Value v = arg(n.a);
      const long double x =
          n.kind == NodeKind::kFloor ? std::floor(v.numeric()) : std::ceil(v.numeric());
      if (std::fabs(x) < 9e18L) return Value(Rational(static_cast<int64_t>(x)));
      return Value::approx(x);
    }
    case NodeKind::kBinomial: {
      const Value top = arg(n.a), bottom = arg(n.b);
      if (top.is_rational() && bottom.is_rational() && top.as_rational().is_integer() &&
          bottom.as_rational().is_integer()) {
        const int64_t t = top.as_rational().num(), k = bottom.as_rational().num();
        if (k < 0 || k > t) return Value(Rational(0));
        if (t <= 62) {
          Rational c(1);
          for (int64_t i = 1; i <= std::min(k, t - k); ++i)
            c = c * Rational(t - std::min(k, t - k) + i, i);
          return Value(c);
        }
      }
      return Value::approx(std::nan(""));
    }
    case NodeKind::kFunction: {
      const long double base = n.b >= 0 ? arg(n.b).numeric() : std::nan("");
      return Value::approx(apply_function(n.name, arg(n.a).numeric(), base));
    }
  }
  throw std::logic_error("unknown node");
}

void collect_variables(const std::vector<Node>& nodes, std::set<std::string>* out) {
  for (const auto& n : nodes)
    if (n.kind == NodeKind::kVariable) out->insert(n.name);
}

// Splits at `sep` where no bracket of any kind is open.
std::vector<std::string_view> split_top(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && s.substr(i, sep.size()) == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + sep.size();
      i = start - 1;
    }
  }
  parts.push_back(s.substr(start));
  return parts;
}

// True when s[0] opens a bracket that closes exactly at s.back().
bool wrapped(std::string_view s) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (depth == 0 && i + 1 < s.size()) return false;
  }
  return depth == 0;
}

bool has_word(std::string_view s) {
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (is_ascii_alpha(s[i])) {
      if (run == 0 && i > 0 && s[i - 1] == '\\') {  // a command's name
        while (i + 1 < s.size() && is_ascii_alpha(s[i + 1]))
          ++i;
        continue;
      }
      if (++run >= 3) return true;
    } else {
      run = 0;
    }
  }
  return false;
}

class AnswerParser {
 public:
  explicit AnswerParser(std::vector<Node>* nodes) : nodes_(nodes) {}

  Answer parse(std::string_view s) {
    if (++depth_ > kMaxDepth) throw ParseFailure();
    Answer a = parse_inner(trim(s));
    --depth_;
    return a;
  }

 private:
  Answer parse_inner(std::string_view s) {
    if (s.empty()) throw ParseFailure();
    if (s == "\\emptyset" || s == "\\varnothing" || s == "\\{\\}") return Answer(AnswerKind::kSet);
    for (const std::string_view env : {"pmatrix", "bmatrix", "matrix"}) {
      const std::string begin = "\\begin{" + std::string(env) + "}";
      const std::string end = "\\end{" + std::string(env) + "}";
      if (s.starts_with(begin) && s.ends_with(end))
        return matrix(s.substr(begin.size(), s.size() - begin.size() - end.size()));
    }
    if (const auto parts = split_top(s, "\\cup"); parts.size() > 1) {
      Answer u(AnswerKind::kUnion);
      for (const auto part : parts)
        u.items.push_back(parse(part));
      return u;
    }
    if (s.starts_with("\\{") && s.ends_with("\\}") && wrapped(s.substr(1))) {
      return collection(AnswerKind::kSet, s.substr(2, s.size() - 4));
    }
    if ((s[0] == '(' || s[0] == '[') && (s.back() == ')' || s.back() == ']') && wrapped(s)) {
      const std::string_view inside = s.substr(1, s.size() - 2);
      if (split_top(inside, ",").size() > 1) {
        Answer t = collection(AnswerKind::kTuple, inside, /*expand_pm=*/false);
        t.open = s[0];
        t.close = s.back();
        return t;
      }
    }
    if (split_top(s, ",").size() > 1) return collection(AnswerKind::kList, s);
    if (has_word(s)) {
      Answer text(AnswerKind::kText);
      text.text = to_lower_ascii(s);
      return text;
    }
    for (const std::string_view relation : {"<", ">", "\\le", "\\ge", "\\ne", "\\approx"})
      if (s.find(relation) != std::string_view::npos) throw ParseFailure();
    for (const std::string_view pm : {"\\pm", "\\mp"}) {
      const auto parts = split_top(s, pm);
      if (parts.size() == 2) {
        Answer list(AnswerKind::kList);
        const int a = expression(parts[0].empty() ? "0" : parts[0]);
        const int b = expression(parts[1]);
        list.items.emplace_back(AnswerKind::kExpression, add(Node(NodeKind::kAdd, a, b)));
        list.items.emplace_back(AnswerKind::kExpression, add(Node(NodeKind::kSub, a, b)));
        return list;
      }
      if (parts.size() > 2) throw ParseFailure();
    }
    const auto sides = split_top(s, "=");
    if (sides.size() == 2) {
      const int lhs = expression(sides[0]);
      return Answer(AnswerKind::kEquation, lhs, expression(sides[1]));
    }
    if (sides.size() > 2) throw ParseFailure();
    return Answer(AnswerKind::kExpression, expression(s));
  }

  int add(Node n) {
    if (nodes_->size() >= kMaxNodes) throw ParseFailure();
    nodes_->push_back(std::move(n));
    return static_cast<int>(nodes_->size() - 1);
  }

  int expression(std::string_view s) { return ExpressionParser(trim(s), nodes_).parse_all(); }

  // Items separated by top-level commas; "a \pm b" items become two (in sets and lists).
  Answer collection(AnswerKind kind, std::string_view inside, bool expand_pm = true) {
    Answer out(kind);
    if (trim(inside).empty()) return out;
    for (const auto part : split_top(inside, ",")) {
      Answer item = parse(part);
      if (expand_pm && item.kind == AnswerKind::kList) {
        for (auto& x : item.items)
          out.items.push_back(std::move(x));
      } else {
        out.items.push_back(std::move(item));
      }
    }
    return out;
  }

  Answer matrix(std::string_view body) {
    Answer m(AnswerKind::kMatrix);
    for (auto row : split_top(body, "\\\\")) {
      row = trim(row);
      if (row.empty()) continue;  // a trailing \\ before \end
      const auto cells = split_top(row, "&");
      if (m.columns == 0) m.columns = cells.size();
      if (cells.size() != m.columns) throw ParseFailure();
      for (const auto cell : cells)
        m.items.emplace_back(AnswerKind::kExpression, expression(cell));
    }
    if (m.items.empty()) throw ParseFailure();
    return m;
  }

  std::vector<Node>* nodes_;
  int depth_ = 0;
};

// FNV-1a: a stable hash of a variable's name, so its values do not depend on the run.
uint64_t fnv1a(std::string_view s, uint64_t salt) {
  uint64_t h = 1469598103934665603ULL ^ salt;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

struct Parsed {
  std::vector<Node> nodes;
  Answer root;
};

std::optional<Parsed> parse_answer(std::string_view s) {
  if (s.size() > kMaxParsedBytes) return std::nullopt;
  Parsed p;
  try {
    p.root = AnswerParser(&p.nodes).parse(s);
  } catch (const ParseFailure&) {
    return std::nullopt;
  }
  return p;
}

class Comparer {
 public:
  Comparer(const Parsed& a, const Parsed& b) : a_(a), b_(b) {
    std::set<std::string> names;
    collect_variables(a.nodes, &names);
    collect_variables(b.nodes, &names);
    const int points = names.empty() ? 1 : kPoints;
    size_t index = 0;
    for (const auto& name : names) {
      ++index;
      for (int p = 0; p < points; ++p) {
        if (static_cast<int>(substitutions_.size()) <= p) substitutions_.emplace_back();
        // Distinct small rationals per variable and point (index keeps names from colliding).
        const uint64_t h = fnv1a(name, static_cast<uint64_t>(p));
        substitutions_[static_cast<size_t>(p)][name] =
            Value(Rational(static_cast<int64_t>(37 * index + 11 * p + h % 29 + 3),
                           static_cast<int64_t>(h % 13 + 7)));
      }
    }
    if (substitutions_.empty()) substitutions_.emplace_back();
  }

  bool equal(const Answer& x, const Answer& y) {
    if (x.kind == AnswerKind::kExpression &&
        (y.kind == AnswerKind::kSet || y.kind == AnswerKind::kList))
      return y.items.size() == 1 && equal(x, y.items[0]);
    if (y.kind == AnswerKind::kExpression &&
        (x.kind == AnswerKind::kSet || x.kind == AnswerKind::kList))
      return x.items.size() == 1 && equal(x.items[0], y);
    const bool unordered_x = x.kind == AnswerKind::kSet || x.kind == AnswerKind::kList;
    const bool unordered_y = y.kind == AnswerKind::kSet || y.kind == AnswerKind::kList;
    if (unordered_x && unordered_y) return same_multiset(x.items, y.items);
    if (x.kind != y.kind) {
      structural_ = true;
      return false;
    }
    switch (x.kind) {
      case AnswerKind::kExpression:
        return values_equal(x.expr, y.expr);
      case AnswerKind::kText:
        return x.text == y.text;
      case AnswerKind::kEquation:
        return equations_equal(x, y);
      case AnswerKind::kUnion:
        return same_multiset(x.items, y.items);
      case AnswerKind::kTuple:
        if (x.open != y.open || x.close != y.close) return structural_ = true, false;
        [[fallthrough]];
      case AnswerKind::kMatrix:
        if (x.items.size() != y.items.size() || x.columns != y.columns)
          return structural_ = true, false;
        for (size_t i = 0; i < x.items.size(); ++i)
          if (!equal(x.items[i], y.items[i])) return false;
        return true;
      default:
        return false;
    }
  }

  bool numeric() const { return numeric_; }
  bool structural() const { return structural_; }

 private:
  // Every item of xs matched to a distinct equal item of ys.
  bool same_multiset(const std::vector<Answer>& xs, const std::vector<Answer>& ys) {
    if (xs.size() != ys.size()) return structural_ = true, false;
    std::vector<bool> used(ys.size(), false);
    for (const auto& x : xs) {
      bool found = false;
      for (size_t j = 0; j < ys.size() && !found; ++j) {
        if (!used[j] && equal(x, ys[j])) used[j] = found = true;
      }
      if (!found) return false;
    }
    return true;
  }

  std::optional<Value> eval(const Parsed& p, int expr, size_t point) {
    check_deadline();
    try {
      Value v = evaluate(p.nodes, expr, substitutions_[point]);
      if (!v.exact()) numeric_ = true;
      return v;
    } catch (const std::domain_error&) {
      return std::nullopt;
    }
  }

  bool values_equal(int ex, int ey) {
    bool compared = false;
    for (size_t p = 0; p < substitutions_.size(); ++p) {
      const auto vx = eval(a_, ex, p), vy = eval(b_, ey, p);
      if (!vx && !vy) continue;  // undefined on both sides at this point
      if (!vx || !vy || !vx->equals(*vy)) return false;
      compared = true;
    }
    return compared;
  }

  // lhs - rhs of one equation a nonzero constant multiple of the other's.
  bool equations_equal(const Answer& x, const Answer& y) {
    std::optional<Value> ratio;
    for (size_t p = 0; p < substitutions_.size(); ++p) {
      const auto lx = eval(a_, x.expr, p), rx = eval(a_, x.rhs, p);
      const auto ly = eval(b_, y.expr, p), ry = eval(b_, y.rhs, p);
      if (!lx || !rx || !ly || !ry) return false;
      const Value dx = *lx - *rx, dy = *ly - *ry;
      const bool zx = dx.equals(Value()), zy = dy.equals(Value());
      if (zx && zy) continue;
      if (zx || zy) return false;
      const Value r = dx / dy;
      if (ratio && !ratio->equals(r)) return false;
      ratio = r;
    }
    return true;
  }

  const Parsed& a_;
  const Parsed& b_;
  std::vector<Substitution> substitutions_;
  bool numeric_ = false;
  bool structural_ = false;
};

}  // namespace

MathComparison compare_math_answers(std::string_view a, std::string_view b) {
  if (a == b) return {true, "text"};
  const auto pa = parse_answer(a);
  const auto pb = parse_answer(b);
  if (!pa || !pb) return {false, "unparsed"};
  // The substitution maps hold values by name; a Comparer uses the two trees in place.
  Comparer comparer(*pa, *pb);
  // Answers are compared with a's tree on the left: `equal` evaluates x in a, y in b.
  const bool equal = comparer.equal(pa->root, pb->root);
  if (equal) return {true, comparer.numeric() ? "numeric" : "exact"};
  return {false, comparer.structural() ? "structure" : comparer.numeric() ? "numeric" : "exact"};
}

}  // namespace flywheel::verifiers
