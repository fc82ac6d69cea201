// Runs a parsed template against a context: statements in interpreter.cpp, expressions in
// evaluate.cpp.
//
// Scoping follows Jinja2: a for-loop iteration, a macro call, {% with %}, {% generation %}
// and the body of a {% set %} or {% filter %} block each get a fresh scope whose writes
// vanish when it ends (why templates carry state across iterations in a namespace), while
// {% if %} bodies write to the scope around them. Reads look outward through the scopes
// where a block was written, then at the globals.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/text/jinja/ast.h"
#include "trainer/text/jinja/value.h"

namespace flywheel::jinja {

struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* find(std::string_view name) const;  // here or in an enclosing scope
  void set(const std::string& name, Value value);  // here
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
 public:
  Interpreter(const Program& program, const std::string& name);
  // Clears the namespaces the template assigned to: the only objects a template can make
  // refer to themselves, so the only reference cycles, which would otherwise leak.
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // UserError "NAME:LINE: ..." for any failure.
  std::string render(const nlohmann::ordered_json& context);

 private:
  enum class Flow { Normal, Break, Continue };

  // Counts nested statement, expression and macro evaluations, so that no template (a macro
  // calling itself, say) can exhaust the native stack.
  class DepthGuard {
   public:
    explicit DepthGuard(Interpreter* in);
    ~DepthGuard() { --in_->depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Interpreter* in_;
  };

  // ---- statements (interpreter.cpp) ----
  Flow exec_body(const Body& body, const ScopePtr& scope);
  Flow exec(const Stmt& s, const ScopePtr& scope);
  Flow exec_statement(const Stmt& s, const ScopePtr& scope);
  Flow exec_for(const Stmt& s, const ScopePtr& scope);
  void exec_set(const Stmt& s, const ScopePtr& scope);
  void assign(const Target& target, Value value, Scope& scope);
  void assign_attribute(const Target& target, Value value, const ScopePtr& scope);
  std::string capture(const Body& body, const ScopePtr& scope);
  Value apply_filters(const std::vector<ExprPtr>& filters, Value value, const ScopePtr& scope);
  // A macro, or the caller() of a {% call %} block, closing over `scope`.
  Value make_callable(const std::string& name, const std::vector<Parameter>& params,
                      const Body& body, const ScopePtr& scope);
  Value call_callable(const std::string& name, const std::vector<Parameter>& params,
                      const Body& body, const std::weak_ptr<Scope>& closure, CallArgs& args);
  void write(std::string_view text);
  void count_iteration();
  void charge(const Value& produced);

  // ---- expressions (evaluate.cpp) ----
  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_node(const Expr& e, const ScopePtr& scope);
  Value eval_compare(const Expr& e, const ScopePtr& scope);
  CallArgs eval_arguments(const Arguments& args, const ScopePtr& scope);
  Value eval_call(const Expr& e, const ScopePtr& scope, const Value* caller);
  Value eval_filter(const Expr& e, Value input, const ScopePtr& scope);
  Value lookup(const std::string& name, const ScopePtr& scope) const;

  const Program& program_;
  const std::string& name_;
  std::string* out_ = nullptr;
  int depth_ = 0;
  int64_t iterations_ = 0;
  uint64_t work_bytes_ = 0;
  std::vector<std::shared_ptr<ObjectData>> assigned_namespaces_;
  std::unordered_set<const ObjectData*> assigned_seen_;
};

}  // namespace flywheel::jinja
