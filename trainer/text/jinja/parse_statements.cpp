// Block tags: {% for %}, {% if %}, {% set %}, {% macro %}, ... (see parser_state.h).
#include <algorithm>

#include "trainer/text/jinja/parser.h"
#include "trainer/text/jinja/parser_state.h"

namespace flywheel::jinja {

// Statements up to a block tag named in `ends` (left as the current token) or the end of
// the template, which is an error inside an `opener` block.
Body Parser::parse_body(Ends ends, std::string_view opener, int opener_line) {
  DepthGuard guard(this);
  Body body;
  while (true) {
    const Token& t = current();
    if (t.kind == TokenKind::Text) {
      auto s = make_stmt(Stmt::Kind::Text, t.line);
      s->text = t.text;
      body.push_back(std::move(s));
      advance();
    } else if (t.kind == TokenKind::VariableBegin) {
      auto s = make_stmt(Stmt::Kind::Print, t.line);
      advance();
      s->expr = parse_tuple(true, {}, false);
      if (current().kind != TokenKind::VariableEnd) {
        fail("expected end of print statement '}}', got " + describe(current()));
      }
      advance();
      body.push_back(std::move(s));
    } else if (t.kind == TokenKind::BlockBegin) {
      advance();
      if (current().kind != TokenKind::Name) fail("expected a statement name after '{%'");
      if (std::find(ends.begin(), ends.end(), current().text) != ends.end()) return body;
      body.push_back(parse_statement());
    } else if (t.kind == TokenKind::End) {
      if (ends.size() == 0) return body;
      fail_at(opener_line, "unclosed '{% " + std::string(opener) + " %}': expected '{% " +
                               std::string(*ends.begin()) + " %}' before the end of the template");
    } else {
      fail("unexpected " + describe(t));
    }
  }
}

StmtPtr Parser::make_stmt(Stmt::Kind kind, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = line;
  return s;
}

StmtPtr Parser::parse_statement() {
  const std::string keyword = current().text;
  const int line = current().line;
  advance();
  if (keyword == "for") return parse_for(line);
  if (keyword == "if") return parse_if(line);
  if (keyword == "set") return parse_set(line);
  if (keyword == "macro") return parse_macro(line);
  if (keyword == "call") return parse_call_block(line);
  if (keyword == "filter") return parse_filter_block(line);
  if (keyword == "with") return parse_with(line);
  if (keyword == "generation") {
    auto s = make_stmt(Stmt::Kind::Scope, line);
    expect_block_end();
    s->body = parse_body({"endgeneration"}, "generation", line);
    expect_end_tag("endgeneration");
    return s;
  }
  if (keyword == "break" || keyword == "continue") {
    if (loop_depth_ == 0) fail_at(line, "'{% " + keyword + " %}' outside a for loop");
    expect_block_end();
    return make_stmt(keyword == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, line);
  }
  if (keyword == "include" || keyword == "import" || keyword == "from" || keyword == "extends" ||
      keyword == "block") {
    fail_at(line, "'{% " + keyword + " %}' is not supported: a chat template stands alone");
  }
  if (keyword.rfind("end", 0) == 0 || keyword == "elif" || keyword == "else") {
    fail_at(line, "unexpected '{% " + keyword + " %}' with no block open to close");
  }
  fail_at(line, "unknown statement '{% " + keyword + " %}'");
}

StmtPtr Parser::parse_for(int line) {
  auto s = make_stmt(Stmt::Kind::For, line);
  s->target = parse_target(false, "in");
  if (!skip_name("in")) fail("expected 'in' in the for loop, got " + describe(current()));
  s->expr = parse_tuple(false, {"recursive"}, false);
  if (skip_name("if")) s->condition = parse_expression(true);
  if (is_name("recursive")) fail("recursive for loops are not supported");
  expect_block_end();
  ++loop_depth_;
  s->body = parse_body({"endfor", "else"}, "for", line);
  --loop_depth_;
  if (skip_name("else")) {
    expect_block_end();
    s->else_body = parse_body({"endfor"}, "for", line);
  }
  expect_end_tag("endfor");
  return s;
}

StmtPtr Parser::parse_if(int line) {
  auto s = make_stmt(Stmt::Kind::If, line);
  ++in_if_;
  while (true) {
    ExprPtr condition = parse_tuple(false, {}, false);
    expect_block_end();
    Body body = parse_body({"endif", "elif", "else"}, "if", line);
    s->branches.emplace_back(std::move(condition), std::move(body));
    if (!skip_name("elif")) break;
  }
  if (skip_name("else")) {
    expect_block_end();
    s->else_body = parse_body({"endif"}, "if", line);
  }
  --in_if_;
  expect_end_tag("endif");
  return s;
}

StmtPtr Parser::parse_set(int line) {
  Target target = parse_target(true, "=");
  if (skip_op("=")) {
    auto s = make_stmt(Stmt::Kind::Set, line);
    s->target = std::move(target);
    s->expr = parse_tuple(true, {}, false);
    expect_block_end();
    return s;
  }
  if (target.unpack) fail("a {% set %} block assigns to one name");
  auto s = make_stmt(Stmt::Kind::SetBlock, line);
  s->target = std::move(target);
  if (is_op("|")) s->filters = parse_filter_chain();
  expect_block_end();
  s->body = parse_body({"endset"}, "set", line);
  expect_end_tag("endset");
  return s;
}

StmtPtr Parser::parse_macro(int line) {
  auto s = make_stmt(Stmt::Kind::Macro, line);
  s->name = expect_identifier();
  s->params = parse_parameters();
  expect_block_end();
  s->body = parse_callable_body({"endmacro"}, "macro", line);
  expect_end_tag("endmacro");
  return s;
}

StmtPtr Parser::parse_call_block(int line) {
  auto s = make_stmt(Stmt::Kind::CallBlock, line);
  if (is_op("(")) s->params = parse_parameters();
  s->expr = parse_expression(true);
  if (s->expr->kind != Kind::Call) fail_at(line, "{% call %} needs a macro call");
  expect_block_end();
  s->body = parse_callable_body({"endcall"}, "call", line);
  expect_end_tag("endcall");
  return s;
}

StmtPtr Parser::parse_filter_block(int line) {
  auto s = make_stmt(Stmt::Kind::FilterBlock, line);
  s->filters = parse_filter_chain();
  expect_block_end();
  s->body = parse_body({"endfilter"}, "filter", line);
  expect_end_tag("endfilter");
  return s;
}

StmtPtr Parser::parse_with(int line) {
  auto s = make_stmt(Stmt::Kind::With, line);
  while (current().kind != TokenKind::BlockEnd) {
    if (!s->assignments.empty()) expect_op(",");
    std::string name = expect_identifier();
    expect_op("=");
    s->assignments.emplace_back(std::move(name), parse_expression(true));
  }
  expect_block_end();
  s->body = parse_body({"endwith"}, "with", line);
  expect_end_tag("endwith");
  return s;
}

// A macro or caller body: break/continue cannot reach a loop outside it.
Body Parser::parse_callable_body(Ends ends, std::string_view opener, int line) {
  const int saved = loop_depth_;
  loop_depth_ = 0;
  Body body = parse_body(ends, opener, line);
  loop_depth_ = saved;
  return body;
}

std::vector<Parameter> Parser::parse_parameters() {
  std::vector<Parameter> params;
  expect_op("(");
  while (!is_op(")")) {
    if (!params.empty()) expect_op(",");
    if (is_op(")")) break;
    Parameter p;
    p.name = expect_identifier();
    if (skip_op("=")) {
      p.default_value = parse_expression(true);
    } else if (!params.empty() && params.back().default_value) {
      fail("a parameter without a default follows one with a default");
    }
    params.push_back(std::move(p));
  }
  expect_op(")");
  return params;
}

// `x`, `a, b`, `(a, b)`, or with `allow_attribute` `ns.attr`; `end` is the keyword or
// operator that follows the target ("in" or "=").
Target Parser::parse_target(bool allow_attribute, std::string_view end) {
  Target target;
  if (allow_attribute && current().kind == TokenKind::Name && peek().kind == TokenKind::Operator &&
      peek().text == ".") {
    target.names.push_back(expect_identifier());
    advance();
    target.attribute = expect_identifier();
    return target;
  }
  const bool parenthesized = skip_op("(");
  while (true) {
    const int line = current().line;
    std::string name = expect_identifier();
    if (name == "true" || name == "false" || name == "none" || name == "True" || name == "False" ||
        name == "None") {
      fail_at(line, "cannot assign to '" + name + "'");
    }
    target.names.push_back(std::move(name));
    if (!skip_op(",")) break;
    target.unpack = true;
    if (current().kind != TokenKind::Name || current().text == end) break;
  }
  if (parenthesized) expect_op(")");
  return target;
}

// `name(args) | name2 ...` in {% filter %} and {% set x | f %}: filters with no input.
std::vector<ExprPtr> Parser::parse_filter_chain() {
  std::vector<ExprPtr> filters;
  skip_op("|");
  do {
    filters.push_back(parse_one_filter(nullptr));
  } while (skip_op("|"));
  return filters;
}

std::unique_ptr<Program> parse(std::vector<Token> tokens, const std::string& name) {
  return Parser(std::move(tokens), name).run();
}

}  // namespace flywheel::jinja
