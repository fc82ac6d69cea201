// The expression grammar, from the conditional down to primaries, in the precedence order
// parser.h lists.
#include <algorithm>

#include "trainer/text/jinja/parser_state.h"

namespace flywheel::jinja {

ExprPtr Parser::make(Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

// Records the node's height; a flat but long chain (a ~ b ~ c ~ ...) is as deep as a
// nested one for the evaluator.
ExprPtr Parser::finish(ExprPtr e) {
  int depth = 0;
  const auto see = [&](const ExprPtr& child) {
    if (child) depth = std::max(depth, child->depth);
  };
  see(e->a), see(e->b), see(e->c), see(e->d);
  for (const auto& item : e->items)
    see(item);
  for (const auto& item : e->args.positional)
    see(item);
  for (const auto& kv : e->args.keyword)
    see(kv.second);
  see(e->args.star), see(e->args.double_star);
  e->depth = depth + 1;
  if (e->depth > 2 * kMaxParseDepth) {
    fail_at(e->line,
            "expression nested more than " + std::to_string(2 * kMaxParseDepth) + " levels deep");
  }
  return e;
}

bool Parser::at_tuple_end(Ends extra_ends) const {
  const Token& t = current();
  if (t.kind == TokenKind::VariableEnd || t.kind == TokenKind::BlockEnd ||
      t.kind == TokenKind::End || (t.kind == TokenKind::Operator && t.text == ")")) {
    return true;
  }
  return t.kind == TokenKind::Name &&
         std::find(extra_ends.begin(), extra_ends.end(), t.text) != extra_ends.end();
}

// `a, b` is a tuple wherever Jinja2 allows one: in {{ }}, after `in`, `=`, and in ( ).
ExprPtr Parser::parse_tuple(bool with_condexpr, Ends extra_ends, bool parenthesized) {
  const int line = current().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (at_tuple_end(extra_ends)) break;
    items.push_back(parse_expression(with_condexpr));
    if (!is_op(",")) break;
    is_tuple = true;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items.front());
    if (!parenthesized) fail("expected an expression, got " + describe(current()));
  }
  auto e = make(Kind::Tuple, line);
  e->items = std::move(items);
  return finish(std::move(e));
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(this);
  return with_condexpr ? parse_conditional() : parse_or();
}

ExprPtr Parser::parse_conditional() {
  ExprPtr value = parse_or();
  while (is_name("if")) {
    const int line = current().line;
    advance();
    auto e = make(Kind::Conditional, line);
    e->a = std::move(value);
    e->b = parse_or();
    if (skip_name("else")) e->c = parse_conditional();
    value = finish(std::move(e));
  }
  return value;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    auto e = make(Kind::Or, current().line);
    advance();
    e->a = std::move(left);
    e->b = parse_and();
    left = finish(std::move(e));
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    auto e = make(Kind::And, current().line);
    advance();
    e->a = std::move(left);
    e->b = parse_not();
    left = finish(std::move(e));
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (!is_name("not")) return parse_compare();
  DepthGuard guard(this);
  auto e = make(Kind::Not, current().line);
  advance();
  e->a = parse_not();
  return finish(std::move(e));
}

ExprPtr Parser::parse_compare() {
  const int line = current().line;
  ExprPtr first = parse_math1();
  auto e = make(Kind::Compare, line);
  while (true) {
    static const std::pair<std::string_view, CompareOp> kOps[] = {
        {"==", CompareOp::Eq}, {"!=", CompareOp::Ne}, {"<", CompareOp::Lt},
        {"<=", CompareOp::Le}, {">", CompareOp::Gt},  {">=", CompareOp::Ge}};
    bool found = false;
    for (const auto& [op, code] : kOps) {
      if (is_op(op)) {
        advance();
        e->compare_ops.push_back(code);
        found = true;
        break;
      }
    }
    if (!found && is_name("in")) {
      advance();
      e->compare_ops.push_back(CompareOp::In);
    } else if (!found && is_name("not") && peek().kind == TokenKind::Name && peek().text == "in") {
      advance();
      advance();
      e->compare_ops.push_back(CompareOp::NotIn);
    } else if (!found) {
      break;
    }
    e->items.push_back(parse_math1());
  }
  if (e->items.empty()) return first;
  e->a = std::move(first);
  return finish(std::move(e));
}

ExprPtr Parser::binary(BinaryOp op, ExprPtr left, ExprPtr right, int line) {
  auto e = make(Kind::Binary, line);
  e->binary_op = op;
  e->a = std::move(left);
  e->b = std::move(right);
  return finish(std::move(e));
}

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const BinaryOp op = is_op("+") ? BinaryOp::Add : BinaryOp::Sub;
    const int line = current().line;
    advance();
    left = binary(op, std::move(left), parse_concat(), line);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    const int line = current().line;
    advance();
    left = binary(BinaryOp::Concat, std::move(left), parse_math2(), line);
  }
  return left;
}

ExprPtr Parser::parse_math2() {
  ExprPtr left = parse_pow();
  while (true) {
    BinaryOp op;
    if (is_op("*")) {
      op = BinaryOp::Mul;
    } else if (is_op("/")) {
      op = BinaryOp::Div;
    } else if (is_op("//")) {
      op = BinaryOp::FloorDiv;
    } else if (is_op("%")) {
      op = BinaryOp::Mod;
    } else {
      return left;
    }
    const int line = current().line;
    advance();
    left = binary(op, std::move(left), parse_pow(), line);
  }
}

// Jinja2's ** is left-associative and binds looser than unary minus: -2 ** 2 is 4.
ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    const int line = current().line;
    advance();
    left = binary(BinaryOp::Pow, std::move(left), parse_unary(true), line);
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    DepthGuard guard(this);
    auto e = make(is_op("-") ? Kind::Negate : Kind::Plus, current().line);
    advance();
    e->a = parse_unary(false);
    node = finish(std::move(e));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  return with_filter ? parse_filter_expr(std::move(node)) : std::move(node);
}

ExprPtr Parser::literal(Value v, int line) {
  auto e = make(Kind::Literal, line);
  e->value = std::move(v);
  return e;
}

ExprPtr Parser::parse_primary() {
  const Token& t = current();
  const int line = t.line;
  switch (t.kind) {
    case TokenKind::Name: {
      const std::string name = t.text;
      advance();
      if (name == "true" || name == "True") return literal(Value(true), line);
      if (name == "false" || name == "False") return literal(Value(false), line);
      if (name == "none" || name == "None") return literal(Value::none(), line);
      auto e = make(Kind::Name, line);
      e->name = name;
      return e;
    }
    case TokenKind::String: {
      std::string s;
      while (current().kind == TokenKind::String) {  // "a" "b" is "ab", as in Python
        s += current().text;
        advance();
      }
      return literal(Value(std::move(s)), line);
    }
    case TokenKind::Integer: {
      const int64_t i = t.integer;
      advance();
      return literal(Value(i), line);
    }
    case TokenKind::Float: {
      const double d = t.number;
      advance();
      return literal(Value(d), line);
    }
    default:
      break;
  }
  if (skip_op("(")) {
    ExprPtr inner = parse_tuple(true, {}, true);
    expect_op(")");
    return inner;
  }
  if (is_op("[")) return parse_list();
  if (is_op("{")) return parse_dict();
  fail("unexpected " + describe(t));
}

ExprPtr Parser::parse_list() {
  auto e = make(Kind::List, current().line);
  expect_op("[");
  while (!is_op("]")) {
    if (!e->items.empty()) expect_op(",");
    if (is_op("]")) break;
    e->items.push_back(parse_expression(true));
  }
  expect_op("]");
  return finish(std::move(e));
}

ExprPtr Parser::parse_dict() {
  auto e = make(Kind::Dict, current().line);
  expect_op("{");
  while (!is_op("}")) {
    if (!e->items.empty()) expect_op(",");
    if (is_op("}")) break;
    e->items.push_back(parse_expression(true));
    expect_op(":");
    e->items.push_back(parse_expression(true));
  }
  expect_op("}");
  return finish(std::move(e));
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      advance();
      node = parse_one_filter(std::move(node));
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const int line = current().line;
  if (skip_op(".")) {
    if (current().kind == TokenKind::Name) {
      auto e = make(Kind::Attribute, line);
      e->a = std::move(node);
      e->name = expect_identifier();
      return finish(std::move(e));
    }
    if (current().kind != TokenKind::Integer) fail("expected a name or a number after '.'");
    auto e = make(Kind::Item, line);
    e->a = std::move(node);
    e->b = literal(Value(current().integer), line);
    advance();
    return finish(std::move(e));
  }
  expect_op("[");
  ExprPtr start;
  if (!is_op(":")) {
    start = parse_expression(true);
    if (!is_op(":")) {
      if (is_op(",")) fail("tuple subscripts are not supported");
      expect_op("]");
      auto e = make(Kind::Item, line);
      e->a = std::move(node);
      e->b = std::move(start);
      return finish(std::move(e));
    }
  }
  auto e = make(Kind::Slice, line);
  e->a = std::move(node);
  e->b = std::move(start);
  expect_op(":");
  if (!is_op("]") && !is_op(":")) e->c = parse_expression(true);
  if (skip_op(":") && !is_op("]")) e->d = parse_expression(true);
  expect_op("]");
  return finish(std::move(e));
}

ExprPtr Parser::parse_call(ExprPtr node) {
  auto e = make(Kind::Call, current().line);
  e->a = std::move(node);
  e->args = parse_arguments();
  return finish(std::move(e));
}

Arguments Parser::parse_arguments() {
  Arguments args;
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) {
      expect_op(",");
      if (is_op(")")) break;
    }
    first = false;
    if (args.double_star) fail("no arguments may follow **kwargs");
    if (skip_op("**")) {
      args.double_star = parse_expression(true);
      continue;
    }
    if (skip_op("*")) {
      if (args.star) fail("only one *args per call");
      args.star = parse_expression(true);
      continue;
    }
    if (current().kind == TokenKind::Name && peek().kind == TokenKind::Operator &&
        peek().text == "=") {
      std::string key = expect_identifier();
      advance();
      args.keyword.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!args.keyword.empty() || args.star) {
        fail("positional argument after a keyword argument or *args");
      }
      args.positional.push_back(parse_expression(true));
    }
  }
  expect_op(")");
  return args;
}

std::string Parser::dotted_name() {
  std::string name = expect_identifier();
  while (skip_op("."))
    name += "." + expect_identifier();
  return name;
}

ExprPtr Parser::parse_one_filter(ExprPtr input) {
  auto e = make(Kind::Filter, current().line);
  e->name = dotted_name();
  e->filter = find_filter(e->name);
  if (e->filter == nullptr && in_if_ == 0) fail_at(e->line, "unknown filter '" + e->name + "'");
  e->a = std::move(input);
  if (is_op("(")) e->args = parse_arguments();
  return finish(std::move(e));
}

ExprPtr Parser::parse_test(ExprPtr input) {
  const int line = current().line;
  advance();  // is
  const bool negated = skip_name("not");
  auto e = make(Kind::Test, line);
  e->name = dotted_name();
  e->test = find_test(e->name);
  if (e->test == nullptr && in_if_ == 0) fail_at(line, "unknown test '" + e->name + "'");
  e->a = std::move(input);
  const Token& t = current();
  const bool starts_argument = t.kind == TokenKind::Name || t.kind == TokenKind::String ||
                               t.kind == TokenKind::Integer || t.kind == TokenKind::Float ||
                               (t.kind == TokenKind::Operator && (t.text == "[" || t.text == "{"));
  if (is_op("(")) {
    e->args = parse_arguments();
  } else if (starts_argument && !is_name("else") && !is_name("or") && !is_name("and")) {
    // `x is divisibleby 3`, `x is sameas none`: one argument without parentheses.
    if (is_name("is")) fail("tests cannot be chained with 'is'");
    e->args.positional.push_back(parse_postfix(parse_primary()));
  }
  ExprPtr test = finish(std::move(e));
  if (!negated) return test;
  auto n = make(Kind::Not, line);
  n->a = std::move(test);
  return finish(std::move(n));
}

}  // namespace flywheel::jinja
