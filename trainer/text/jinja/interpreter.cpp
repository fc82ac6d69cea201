#include "trainer/text/jinja/interpreter.h"

#include "trainer/text/jinja/access.h"
#include "trainer/text/jinja/location.h"

namespace flywheel::jinja {

namespace {

// 600 levels take about 1 MiB of native stack in an optimized build (measured), well inside
// the 8 MiB of a main thread or default pthread, and let a simple macro recurse some 140
// deep; Python's own recursion limit stops jinja2 between 100 and 200.
constexpr int kMaxDepth = 600;
// Loop iterations (and macro calls) in one render; a chat template needs a few per message.
constexpr int64_t kMaxIterations = int64_t{1} << 20;
// Bytes of strings (and list slots, 16 bytes each) that expressions produce in one render:
// templates that grow a string in a loop are quadratic, and this keeps them to seconds.
constexpr uint64_t kMaxWorkBytes = uint64_t{1} << 32;

// The per-iteration state behind loop.cycle() and loop.changed().
struct LoopState {
  int64_t index0 = 0;
  bool has_last = false;
  Value last_changed;
};

}  // namespace

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
    for (const auto& [n, v] : s->vars) {
      if (n == name) return &v;
    }
  }
  return nullptr;
}

void Scope::set(const std::string& name, Value value) {
  for (auto& [n, v] : vars) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  vars.emplace_back(name, std::move(value));
}

Interpreter::DepthGuard::DepthGuard(Interpreter* in) : in_(in) {
  if (++in_->depth_ > kMaxDepth) {
    --in_->depth_;
    throw Error("template nesting or macro recursion deeper than " + std::to_string(kMaxDepth));
  }
}

Interpreter::Interpreter(const Program& program, const std::string& name)
    : program_(program), name_(name) {}

Interpreter::~Interpreter() {
  for (const auto& ns : assigned_namespaces_) {
    std::vector<std::pair<std::string, Value>> attrs;
    attrs.swap(ns->attrs);
  }
}

std::string Interpreter::render(const nlohmann::ordered_json& context) {
  if (!context.is_object()) {
    throw located_error(
        name_, 1,
        "the render context must be a JSON object, not " + std::string(context.type_name()));
  }
  auto root = std::make_shared<Scope>();
  try {
    for (const auto& [key, item] : context.items())
      root->set(key, Value::from_json(item));
  } catch (const Error& e) {
    throw located_error(name_, 1, std::string("context: ") + e.what());
  }
  std::string out;
  out_ = &out;
  exec_body(program_.body, root);
  return out;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope) {
  for (const auto& s : body) {
    const Flow flow = exec(*s, scope);
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const ScopePtr& scope) {
  try {
    DepthGuard guard(this);
    return exec_statement(s, scope);
  } catch (const Error& e) {
    throw located_error(name_, s.line, e.what());
  }
}

Interpreter::Flow Interpreter::exec_statement(const Stmt& s, const ScopePtr& scope) {
  switch (s.kind) {
    case Stmt::Kind::Text:
      write(s.text);
      return Flow::Normal;
    case Stmt::Kind::Print: {
      const Value v = eval(*s.expr, scope);
      write(v.is_string() ? v.as_string() : v.str());
      return Flow::Normal;
    }
    case Stmt::Kind::If:
      for (const auto& [condition, body] : s.branches) {
        if (eval(*condition, scope).truthy()) return exec_body(body, scope);
      }
      return exec_body(s.else_body, scope);
    case Stmt::Kind::For:
      return exec_for(s, scope);
    case Stmt::Kind::Set:
    case Stmt::Kind::SetBlock:
      exec_set(s, scope);
      return Flow::Normal;
    case Stmt::Kind::Macro:
      scope->set(s.name, make_callable(s.name, s.params, s.body, scope));
      return Flow::Normal;
    case Stmt::Kind::CallBlock: {
      const Value caller = make_callable("caller", s.params, s.body, scope);
      write(eval_call(*s.expr, scope, &caller).str());
      return Flow::Normal;
    }
    case Stmt::Kind::FilterBlock: {
      Value text(capture(s.body, std::make_shared<Scope>(Scope{scope, {}})));
      write(apply_filters(s.filters, std::move(text), scope).str());
      return Flow::Normal;
    }
    case Stmt::Kind::With: {
      auto inner = std::make_shared<Scope>(Scope{scope, {}});
      for (const auto& [name, expr] : s.assignments)
        inner->set(name, eval(*expr, scope));
      return exec_body(s.body, inner);
    }
    case Stmt::Kind::Scope:
      return exec_body(s.body, std::make_shared<Scope>(Scope{scope, {}}));
    case Stmt::Kind::Break:
      return Flow::Break;
    case Stmt::Kind::Continue:
      return Flow::Continue;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s, const ScopePtr& scope) {
  std::vector<Value> items = iterate(eval(*s.expr, scope));
  if (s.condition) {  // `for x in xs if cond`: filtered first, so loop.length counts the kept
    std::vector<Value> kept;
    for (auto& item : items) {
      count_iteration();
      auto probe = std::make_shared<Scope>(Scope{scope, {}});
      assign(s.target, item, *probe);
      if (eval(*s.condition, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(s.else_body, std::make_shared<Scope>(Scope{scope, {}}));

  auto state = std::make_shared<LoopState>();
  auto loop = std::make_shared<ObjectData>();
  loop->type_name = "LoopContext";
  loop->set("cycle", Value::function("cycle", [state](CallArgs& args) {
              if (args.positional.empty()) throw Error("loop.cycle() needs at least one value");
              const auto n = static_cast<int64_t>(args.positional.size());
              return args.positional[static_cast<size_t>(state->index0 % n)];
            }));
  loop->set("changed", Value::function("changed", [state](CallArgs& args) {
              Value now = Value::tuple(std::move(args.positional));
              if (state->has_last && equal(state->last_changed, now)) return Value(false);
              state->has_last = true;
              state->last_changed = std::move(now);
              return Value(true);
            }));
  const Value loop_value = Value::object(loop);
  const auto n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    count_iteration();
    state->index0 = i;
    loop->set("index0", Value(i));
    loop->set("index", Value(i + 1));
    loop->set("revindex0", Value(n - i - 1));
    loop->set("revindex", Value(n - i));
    loop->set("first", Value(i == 0));
    loop->set("last", Value(i == n - 1));
    loop->set("length", Value(n));
    loop->set("depth0", Value(0));
    loop->set("depth", Value(1));
    loop->set("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    loop->set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
    auto iteration = std::make_shared<Scope>(Scope{scope, {}});
    assign(s.target, items[i], *iteration);
    iteration->set("loop", loop_value);
    if (exec_body(s.body, iteration) == Flow::Break) break;
  }
  return Flow::Normal;
}

void Interpreter::exec_set(const Stmt& s, const ScopePtr& scope) {
  Value value;
  if (s.kind == Stmt::Kind::Set) {
    value = eval(*s.expr, scope);
  } else {
    value = Value(capture(s.body, std::make_shared<Scope>(Scope{scope, {}})));
    value = apply_filters(s.filters, std::move(value), scope);
  }
  if (s.target.attribute.empty()) {
    assign(s.target, std::move(value), *scope);
  } else {
    assign_attribute(s.target, std::move(value), scope);
  }
}

void Interpreter::assign(const Target& target, Value value, Scope& scope) {
  if (!target.unpack) {
    scope.set(target.names.front(), std::move(value));
    return;
  }
  std::vector<Value> items = iterate(value);
  if (items.size() != target.names.size()) {
    throw Error(std::string(items.size() > target.names.size() ? "too many" : "not enough") +
                " values to unpack (expected " + std::to_string(target.names.size()) + ", got " +
                std::to_string(items.size()) + ")");
  }
  for (size_t i = 0; i < items.size(); ++i)
    scope.set(target.names[i], std::move(items[i]));
}

void Interpreter::assign_attribute(const Target& target, Value value, const ScopePtr& scope) {
  const Value* ns = scope->find(target.names.front());
  if (ns == nullptr || !ns->is(Value::Kind::Object) || !ns->as_object().assignable) {
    throw Error("cannot assign attribute '" + target.attribute + "' on '" + target.names.front() +
                "': it is not a namespace()");
  }
  // Hugging Face refuses these, so that templates cannot reach Python internals.
  if (target.attribute.front() == '_') {
    throw Error(
        "chat templates cannot store underscore-prefixed attributes on a namespace, "
        "but got '" +
        target.attribute + "'");
  }
  const std::shared_ptr<ObjectData>& object = ns->object_ptr();
  if (assigned_seen_.insert(object.get()).second) assigned_namespaces_.push_back(object);
  object->set(target.attribute, std::move(value));
}

std::string Interpreter::capture(const Body& body, const ScopePtr& scope) {
  std::string text;
  std::string* const saved = out_;
  out_ = &text;
  try {
    exec_body(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return text;
}

Value Interpreter::apply_filters(const std::vector<ExprPtr>& filters, Value value,
                                 const ScopePtr& scope) {
  for (const auto& f : filters) {
    try {
      value = eval_filter(*f, std::move(value), scope);
    } catch (const Error& e) {
      throw located_error(name_, f->line, e.what());
    }
  }
  return value;
}

Value Interpreter::make_callable(const std::string& name, const std::vector<Parameter>& params,
                                 const Body& body, const ScopePtr& scope) {
  // A weak reference: the macro is stored in the scope it closes over, and a strong one
  // would be a cycle. A macro called after its scope ended (only possible by smuggling it
  // out through a namespace) fails cleanly.
  std::weak_ptr<Scope> closure = scope;
  return Value::function(name, [this, name, &params, &body, closure](CallArgs& args) {
    return call_callable(name, params, body, closure, args);
  });
}

Value Interpreter::call_callable(const std::string& name, const std::vector<Parameter>& params,
                                 const Body& body, const std::weak_ptr<Scope>& closure,
                                 CallArgs& args) {
  ScopePtr parent = closure.lock();
  if (!parent) throw Error("macro '" + name + "' called after the block defining it ended");
  DepthGuard guard(this);
  count_iteration();
  auto scope = std::make_shared<Scope>(Scope{std::move(parent), {}});
  std::vector<std::pair<std::string, Value>> keyword = std::move(args.keyword);
  const auto take_keyword = [&](const std::string& key, Value* out) {
    for (auto it = keyword.begin(); it != keyword.end(); ++it) {
      if (it->first == key) {
        *out = std::move(it->second);
        keyword.erase(it);
        return true;
      }
    }
    return false;
  };
  for (size_t i = 0; i < params.size(); ++i) {
    Value v;
    if (i < args.positional.size()) {
      v = args.positional[i];
    } else if (!take_keyword(params[i].name, &v)) {
      // Defaults are evaluated at call time and may read the parameters before them.
      v = params[i].default_value
              ? eval(*params[i].default_value, scope)
              : Value::undefined("parameter '" + params[i].name + "' was not provided");
    }
    scope->set(params[i].name, std::move(v));
  }
  Value caller;
  if (take_keyword("caller", &caller)) scope->set("caller", std::move(caller));
  std::vector<Value> extra;
  for (size_t i = params.size(); i < args.positional.size(); ++i) {
    extra.push_back(args.positional[i]);
  }
  scope->set("varargs", Value::tuple(std::move(extra)));
  DictData kwargs;
  for (auto& [key, v] : keyword)
    kwargs.set(Value(key), std::move(v));
  scope->set("kwargs", Value::dict(std::move(kwargs)));
  return Value(capture(body, scope));
}

void Interpreter::write(std::string_view text) {
  if (out_->size() + text.size() > kMaxStringBytes) {
    throw Error("rendered text longer than " + std::to_string(kMaxStringBytes) + " bytes");
  }
  work_bytes_ += text.size();
  out_->append(text);
}

void Interpreter::count_iteration() {
  if (++iterations_ > kMaxIterations) {
    throw Error("more than " + std::to_string(kMaxIterations) +
                " loop iterations and macro calls in one render");
  }
}

void Interpreter::charge(const Value& produced) {
  if (produced.is_string()) {
    work_bytes_ += produced.as_string().size();
  } else if (produced.is(Value::Kind::List)) {
    work_bytes_ += 16 * produced.as_list().items.size();
  }
  if (work_bytes_ > kMaxWorkBytes) {
    throw Error("the template builds more than " + std::to_string(kMaxWorkBytes) +
                " bytes of values in one render");
  }
}

}  // namespace flywheel::jinja
