// Expression evaluation for the Interpreter (see interpreter.h).
#include "trainer/text/jinja/access.h"
#include "trainer/text/jinja/builtins.h"
#include "trainer/text/jinja/interpreter.h"
#include "trainer/text/jinja/location.h"
#include "trainer/text/jinja/operators.h"

namespace flywheel::jinja {

namespace {

Value call_value(const Value& callee, CallArgs& args) {
  if (callee.is(Value::Kind::Function)) return callee.as_function().call(args);
  if (callee.is_undefined()) throw Error(callee.undefined_hint());
  throw Error("'" + callee.type_name() + "' object is not callable");
}

}  // namespace

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  // The innermost node that sees a location-less Error names the line.
  try {
    DepthGuard guard(this);
    return eval_node(e, scope);
  } catch (const Error& err) {
    throw located_error(name_, e.line, err.what());
  }
}

Value Interpreter::lookup(const std::string& name, const ScopePtr& scope) const {
  if (const Value* v = scope->find(name)) return *v;
  if (const Value* v = find_global(name)) return *v;
  return Value::undefined("'" + name + "' is undefined");
}

Value Interpreter::eval_node(const Expr& e, const ScopePtr& scope) {
  using Kind = Expr::Kind;
  switch (e.kind) {
    case Kind::Literal:
      return e.value;
    case Kind::Name:
      return lookup(e.name, scope);
    case Kind::List:
    case Kind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const auto& item : e.items)
        items.push_back(eval(*item, scope));
      return e.kind == Kind::List ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case Kind::Dict: {
      DictData d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value key = eval(*e.items[i], scope);
        if (key.is(Value::Kind::List) && !key.as_list().is_tuple) {
          throw Error("unhashable type: 'list'");
        }
        if (key.is(Value::Kind::Dict)) throw Error("unhashable type: 'dict'");
        d.set(key, eval(*e.items[i + 1], scope));
      }
      return Value::dict(std::move(d));
    }
    case Kind::Attribute:
      return get_attribute(eval(*e.a, scope), e.name);
    case Kind::Item: {
      const Value obj = eval(*e.a, scope);
      return get_item(obj, eval(*e.b, scope));
    }
    case Kind::Slice: {
      const Value obj = eval(*e.a, scope);
      const auto bound = [&](const ExprPtr& x) { return x ? eval(*x, scope) : Value::none(); };
      const Value start = bound(e.b), stop = bound(e.c), step = bound(e.d);
      Value v = get_slice(obj, start, stop, step);
      charge(v);
      return v;
    }
    case Kind::Call: {
      Value v = eval_call(e, scope, nullptr);
      charge(v);
      return v;
    }
    case Kind::Filter: {
      Value v = eval_filter(e, eval(*e.a, scope), scope);
      charge(v);
      return v;
    }
    case Kind::Test: {
      const Value input = eval(*e.a, scope);
      if (e.test == nullptr) throw Error("unknown test '" + e.name + "'");
      CallArgs args = eval_arguments(e.args, scope);
      return Value(e.test(input, args));
    }
    case Kind::Negate:
      return negate(eval(*e.a, scope));
    case Kind::Plus:
      return unary_plus(eval(*e.a, scope));
    case Kind::Not:
      return Value(!eval(*e.a, scope).truthy());
    case Kind::Binary: {
      const Value left = eval(*e.a, scope);
      Value v = binary_op(e.binary_op, left, eval(*e.b, scope));
      charge(v);
      return v;
    }
    case Kind::Compare:
      return eval_compare(e, scope);
    case Kind::And: {
      Value left = eval(*e.a, scope);
      return left.truthy() ? eval(*e.b, scope) : left;
    }
    case Kind::Or: {
      Value left = eval(*e.a, scope);
      return left.truthy() ? left : eval(*e.b, scope);
    }
    case Kind::Conditional:
      if (eval(*e.b, scope).truthy()) return eval(*e.a, scope);
      if (e.c) return eval(*e.c, scope);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined");
  }
  return Value();
}

// a < b < c is (a < b) and (b < c), with b evaluated once, as in Python.
Value Interpreter::eval_compare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.a, scope);
  for (size_t i = 0; i < e.items.size(); ++i) {
    Value right = eval(*e.items[i], scope);
    if (!compare_op(e.compare_ops[i], left, right)) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

CallArgs Interpreter::eval_arguments(const Arguments& args, const ScopePtr& scope) {
  CallArgs out;
  out.positional.reserve(args.positional.size());
  for (const auto& a : args.positional)
    out.positional.push_back(eval(*a, scope));
  for (const auto& [key, a] : args.keyword)
    out.keyword.emplace_back(key, eval(*a, scope));
  if (args.star) {
    for (Value& v : iterate(eval(*args.star, scope)))
      out.positional.push_back(std::move(v));
  }
  if (args.double_star) {
    const Value extra = eval(*args.double_star, scope);
    if (!extra.is(Value::Kind::Dict))
      throw Error("argument after ** must be a mapping, not " + extra.type_name());
    for (const auto& [key, v] : extra.as_dict().entries) {
      if (!key.is_string()) throw Error("keywords must be strings");
      out.keyword.emplace_back(key.as_string(), v);
    }
  }
  return out;
}

Value Interpreter::eval_call(const Expr& e, const ScopePtr& scope, const Value* caller) {
  const Value callee = eval(*e.a, scope);
  CallArgs args = eval_arguments(e.args, scope);
  if (caller != nullptr) args.keyword.emplace_back("caller", *caller);
  return call_value(callee, args);
}

Value Interpreter::eval_filter(const Expr& e, Value input, const ScopePtr& scope) {
  if (e.filter == nullptr) throw Error("unknown filter '" + e.name + "'");
  CallArgs args = eval_arguments(e.args, scope);
  return e.filter(input, args);
}

}  // namespace flywheel::jinja
