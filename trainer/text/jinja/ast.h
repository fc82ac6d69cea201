// The parsed template: statements holding expressions, each node with its source line.
// Built once by the parser and shared read-only by every render.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trainer/text/jinja/builtins.h"
#include "trainer/text/jinja/value.h"

namespace flywheel::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class BinaryOp { Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Concat };
enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star;         // f(*list): more positional arguments
  ExprPtr double_star;  // f(**dict): more keyword arguments
};

struct Expr {
  enum class Kind {
    Literal,      // value
    Name,         // name
    List,         // items
    Tuple,        // items
    Dict,         // items: key, value, key, value, ...
    Attribute,    // a.name
    Item,         // a[b]
    Slice,        // a[b:c:d], each bound optional
    Call,         // a(args)
    Filter,       // a | name(args); `a` is null in {% filter %} and {% set %} blocks
    Test,         // a is name(args)
    Negate,       // -a
    Plus,         // +a
    Not,          // not a
    Binary,       // a binary_op b
    Compare,      // a compare_ops[0] items[0] compare_ops[1] items[1] ...
    And,          // a and b
    Or,           // a or b
    Conditional,  // a if b else c; c optional
  };

  Kind kind;
  int line;
  Value value;
  std::string name;
  ExprPtr a, b, c, d;
  std::vector<ExprPtr> items;
  Arguments args;
  BinaryOp binary_op = BinaryOp::Add;
  std::vector<CompareOp> compare_ops;
  // Resolved at parse time; null only for an unknown one inside an {% if %} body, which
  // fails when (and only if) it is evaluated, as in Jinja2.
  FilterFn filter = nullptr;
  TestFn test = nullptr;
  int depth = 1;  // height of the subtree, bounded so evaluation cannot overflow the stack
};

// Where a value is stored: `x`, `a, b` (unpacking) or `ns.attr` (a namespace attribute).
struct Target {
  std::vector<std::string> names;
  bool unpack = false;
  std::string attribute;
};

struct Parameter {
  std::string name;
  ExprPtr default_value;  // null: required (undefined when omitted, as in Jinja2)
};

struct Stmt {
  enum class Kind {
    Text,         // text
    Print,        // {{ expr }}
    If,           // branches (condition, body); else_body
    For,          // for target in expr [if condition]: body, else_body
    Set,          // set target = expr
    SetBlock,     // set target | filters: body
    Macro,        // macro name(params): body
    CallBlock,    // call(params) expr: body, passed to the macro as caller()
    FilterBlock,  // filter filters: body
    With,         // with assignments: body
    Scope,        // {% generation %}: body in a scope of its own
    Break,
    Continue,
  };

  Kind kind;
  int line;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  Target target;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<ExprPtr> filters;
  std::string name;
  std::vector<Parameter> params;
  std::vector<std::pair<std::string, ExprPtr>> assignments;
};

struct Program {
  Body body;
};

}  // namespace flywheel::jinja
