// The parser's state and its methods, shared by parse_statements.cpp (block tags) and
// parse_expressions.cpp (the expression grammar). Internal to parser.cpp's parse().
#pragma once

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/text/jinja/ast.h"
#include "trainer/text/jinja/lexer.h"
#include "trainer/text/jinja/location.h"

namespace flywheel::jinja {

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& name)
      : tokens_(std::move(tokens)), name_(name) {}

  std::unique_ptr<Program> run() {
    auto program = std::make_unique<Program>();
    program->body = parse_body({}, "", 0);
    return program;
  }

 private:
  // Deeper expressions or block nesting than this are refused at parse time; real templates
  // stay under 20.
  static constexpr int kMaxParseDepth = 100;

  using Kind = Expr::Kind;
  using Ends = std::initializer_list<std::string_view>;

  // ---- token stream ----

  const Token& current() const { return tokens_[pos_]; }
  const Token& peek() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool is_op(std::string_view op) const {
    return current().kind == TokenKind::Operator && current().text == op;
  }
  bool is_name(std::string_view name) const {
    return current().kind == TokenKind::Name && current().text == name;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::Text:
        return "template text";
      case TokenKind::VariableEnd:
        return "end of print statement '}}'";
      case TokenKind::BlockEnd:
        return "end of statement block '%}'";
      case TokenKind::End:
        return "end of template";
      case TokenKind::String:
        return "string";
      default:
        return "'" + t.text + "'";
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw located_error(name_, current().line, what);
  }
  [[noreturn]] void fail_at(int line, const std::string& what) const {
    throw located_error(name_, line, what);
  }

  void expect_op(std::string_view op) {
    if (!skip_op(op)) fail("expected '" + std::string(op) + "', got " + describe(current()));
  }
  std::string expect_identifier() {
    if (current().kind != TokenKind::Name) fail("expected a name, got " + describe(current()));
    std::string name = current().text;
    advance();
    return name;
  }
  void expect_block_end() {
    if (current().kind != TokenKind::BlockEnd) {
      fail("expected end of statement block '%}', got " + describe(current()));
    }
    advance();
  }
  // The closing tag of a block statement, e.g. {% endfor %}.
  void expect_end_tag(std::string_view tag) {
    if (!skip_name(tag)) fail("expected '" + std::string(tag) + "', got " + describe(current()));
    expect_block_end();
  }

  class DepthGuard {
   public:
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxParseDepth) {
        p_->fail("template nested more than " + std::to_string(kMaxParseDepth) + " levels deep");
      }
    }
    ~DepthGuard() { --p_->depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser* p_;
  };

  // ---- statements (parse_statements.cpp) ----

  Body parse_body(Ends ends, std::string_view opener, int opener_line);
  static StmtPtr make_stmt(Stmt::Kind kind, int line);
  StmtPtr parse_statement();
  StmtPtr parse_for(int line);
  StmtPtr parse_if(int line);
  StmtPtr parse_set(int line);
  StmtPtr parse_macro(int line);
  StmtPtr parse_call_block(int line);
  StmtPtr parse_filter_block(int line);
  StmtPtr parse_with(int line);
  Body parse_callable_body(Ends ends, std::string_view opener, int line);
  std::vector<Parameter> parse_parameters();
  Target parse_target(bool allow_attribute, std::string_view end);
  std::vector<ExprPtr> parse_filter_chain();

  // ---- expressions (parse_expressions.cpp) ----

  ExprPtr make(Kind kind, int line);
  ExprPtr finish(ExprPtr e);
  bool at_tuple_end(Ends extra_ends) const;
  ExprPtr parse_tuple(bool with_condexpr, Ends extra_ends, bool parenthesized);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_conditional();
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr binary(BinaryOp op, ExprPtr left, ExprPtr right, int line);
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr literal(Value v, int line);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_call(ExprPtr node);
  Arguments parse_arguments();
  std::string dotted_name();
  ExprPtr parse_one_filter(ExprPtr input);
  ExprPtr parse_test(ExprPtr input);

  std::vector<Token> tokens_;
  const std::string& name_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;  // for loops around the statement being parsed, within its macro
  int in_if_ = 0;       // {% if %} bodies around it: unknown filters there fail at runtime
};

}  // namespace flywheel::jinja
